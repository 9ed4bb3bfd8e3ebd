package asynqqueue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue/asynqtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports/portstest"
)

// A batch a collector took and then stopped extending the lease of (killed, cut off) is
// given back within seconds, not asynq's two minutes; one whose lease is fresh stays with
// its collector. The collector is played by moving the batches to active in Redis as
// asynq's dequeue does, each with the lease it would have.
func TestBatchesOfAStoppedCollectorAreGivenBack(t *testing.T) {
	url := asynqtest.RedisURL(t)
	opts := fastOptions(t, url)
	q := open(t, url, opts)
	ctx := context.Background()
	require.NoError(t, q.Publish(ctx, portstest.SampleBatch("abandoned", 1)))
	require.NoError(t, q.Publish(ctx, portstest.SampleBatch("held", 1)))

	rdb := mustParse(t, url).MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	prefix := fmt.Sprintf("asynq:{%s}:", opts.Name)
	now := time.Now()
	for _, lease := range []time.Time{
		now.Add(10 * time.Second), // last extended 20 s ago: its collector missed four heartbeats
		now.Add(29 * time.Second), // extended a second ago
	} {
		id, err := rdb.RPopLPush(ctx, prefix+"pending", prefix+"active").Result()
		require.NoError(t, err)
		require.NoError(t, rdb.HSet(ctx, prefix+"t:"+id, "state", "active").Err())
		require.NoError(t, rdb.ZAdd(ctx, prefix+"lease", redis.Z{Score: float64(lease.Unix()), Member: id}).Err())
	}

	got := make(chan string, 4)
	began := time.Now()
	consume(t, q, func(_ context.Context, b telemetry.Batch) error { got <- b.ID; return nil })
	select {
	case id := <-got:
		assert.Equal(t, "abandoned", id, "the batch published first, dequeued first")
		assert.Less(t, time.Since(began), 5*time.Second)
	case <-time.After(10 * time.Second):
		t.Fatal("the abandoned batch was not given back")
	}
	select {
	case id := <-got:
		t.Fatalf("batch %s taken from a collector whose lease is fresh", id)
	case <-time.After(3 * time.Second):
	}
	active, err := q.Inspector().ListActiveTasks(opts.Name)
	require.NoError(t, err)
	assert.Len(t, active, 1, "the held batch stays active")
}
