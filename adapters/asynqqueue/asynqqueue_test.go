package asynqqueue_test

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue/asynqtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports/portstest"
)

func fastOptions(t *testing.T, url string) asynqqueue.Options {
	return asynqqueue.Options{
		Name: asynqtest.QueueName(t, url), Concurrency: 3,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second,
	}
}

func open(t *testing.T, url string, opts asynqqueue.Options) *asynqqueue.Queue {
	t.Helper()
	q, err := asynqqueue.Open(url, opts)
	require.NoError(t, err)
	t.Cleanup(func() { q.Close() })
	return q
}

func TestContract(t *testing.T) {
	url := asynqtest.RedisURL(t)
	portstest.TestQueue(t, portstest.QueueOptions{
		RetryWithin: 500 * time.Millisecond,
		NewQueue: func(t *testing.T) portstest.Queue {
			opts := fastOptions(t, url)
			// Publisher and consumer apart, as in split mode.
			return portstest.Queue{Publisher: open(t, url, opts), Consumer: open(t, url, opts)}
		},
	})
}

func TestBacklogLimitMakesPublishWait(t *testing.T) {
	url := asynqtest.RedisURL(t)
	opts := fastOptions(t, url)
	opts.MaxBacklog = 3
	q := open(t, url, opts)
	ctx := context.Background()
	for i := range 3 {
		require.NoError(t, q.Publish(ctx, portstest.SampleBatch(string(rune('a'+i)), 1)))
	}
	n, err := q.Backlog(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n)

	full, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, q.Publish(full, portstest.SampleBatch("d", 1)), context.DeadlineExceeded, "waits while the backlog is full")

	consume(t, q, func(context.Context, telemetry.Batch) error { return nil })
	waitCtx, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	assert.NoError(t, q.Publish(waitCtx, portstest.SampleBatch("d", 1)), "goes on once collectors catch up")
}

func TestPublishRetriesWhileRedisIsDown(t *testing.T) {
	var logs bytes.Buffer
	q := open(t, "redis://127.0.0.1:1/0", asynqqueue.Options{MinBackoff: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, q.Publish(ctx, portstest.SampleBatch("x", 1)), context.DeadlineExceeded)
	assert.Contains(t, logs.String(), "publish batch failed, retrying")
	assert.Error(t, q.Ping(context.Background()))
}

func TestCorruptTasksAreArchived(t *testing.T) {
	url := asynqtest.RedisURL(t)
	opts := fastOptions(t, url)
	q := open(t, url, opts)
	ctx := context.Background()
	client := asynq.NewClient(mustParse(t, url))
	defer client.Close()
	for _, task := range []*asynq.Task{
		asynq.NewTask(asynqqueue.TaskType, []byte("not a batch")),
		asynq.NewTask(asynqqueue.TaskType, nil),
		asynq.NewTask("telemetry:batch:v0", []byte{1}),
	} {
		_, err := client.Enqueue(task, asynq.Queue(opts.Name), asynq.MaxRetry(math.MaxInt32))
		require.NoError(t, err)
	}
	require.NoError(t, q.Publish(ctx, portstest.SampleBatch("good", 2)))

	got := make(chan telemetry.Batch, 10)
	consume(t, q, func(_ context.Context, b telemetry.Batch) error { got <- b; return nil })
	select {
	case b := <-got:
		assert.Equal(t, "good", b.ID)
	case <-time.After(10 * time.Second):
		t.Fatal("the good batch was not delivered")
	}
	require.Eventually(t, func() bool {
		archived, err := q.Inspector().ListArchivedTasks(opts.Name)
		return err == nil && len(archived) == 3
	}, 10*time.Second, 20*time.Millisecond, "corrupt tasks end archived, visible")
	assert.Empty(t, got, "only the good batch reached the handler")
}

// consume runs q.Consume until the test ends, and waits for it to return.
func consume(t *testing.T, q *asynqqueue.Queue, handle func(context.Context, telemetry.Batch) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = q.Consume(ctx, handle)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func mustParse(t *testing.T, url string) asynq.RedisConnOpt {
	opt, err := asynq.ParseRedisURI(url)
	require.NoError(t, err)
	return opt
}

func TestRedact(t *testing.T) {
	assert.Equal(t, "redis://:xxxxx@h:6379/0", asynqqueue.Redact("redis://:pw@h:6379/0"))
	assert.Equal(t, "rediss://u:xxxxx@h:6380", asynqqueue.Redact("rediss://u:pw@h:6380"))
	assert.Equal(t, "redis://h:6379", asynqqueue.Redact("redis://h:6379"))
}
