package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/ingest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func newService(t *testing.T) (*ingest.Service, *sqlstore.Store) {
	store, err := sqlstore.Open(context.Background(), sqlstoretest.SQLiteURL(t), sqlstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	return ingest.New(store, ingest.Options{Logger: slog.New(slog.DiscardHandler)}), store
}

func TestIngestLeavesOutInvalidSamples(t *testing.T) {
	svc, store := newService(t)
	t0 := time.Date(2025, 7, 18, 20, 42, 34, 0, time.UTC)
	gpu := telemetry.GPU{UUID: "GPU-1", Hostname: "h", Index: 0}
	b := telemetry.Batch{ID: "b1", GPUs: []telemetry.GPU{gpu, {UUID: ""}}, Samples: []telemetry.Sample{
		{GPU: "GPU-1", Metric: "M", Time: t0, Value: 1},
		{GPU: "GPU-1", Metric: "", Time: t0, Value: 2},
		{GPU: "GPU-1", Metric: "M", Time: t0, Value: math.NaN()},
		{GPU: "GPU-1", Metric: "M", Value: 3},
		{GPU: "GPU-2", Metric: "M", Time: t0, Value: 4},
		{GPU: "GPU-1", Metric: "N", Time: t0, Value: math.Inf(-1)},
		{GPU: "GPU-1", Metric: "N", Time: t0, Value: 5},
	}}
	res, err := svc.Ingest(context.Background(), b)
	require.NoError(t, err)
	assert.Equal(t, ingest.Result{Stored: true, Samples: 2, Rejected: 5}, res)

	res, err = svc.Ingest(context.Background(), b)
	require.NoError(t, err)
	assert.Equal(t, ingest.Result{Stored: false, Rejected: 5}, res, "redelivery stores nothing")
	assert.Equal(t, ingest.Stats{Batches: 1, Duplicates: 1, Samples: 2, Rejected: 5}, svc.Stats())

	st, err := store.Stats(context.Background())
	require.NoError(t, err)
	assert.Equal(t, telemetry.Stats{TotalSamples: 2, UniqueGPUs: 1, UniqueHosts: 1, Oldest: t0, Newest: t0}, st)
}

func TestIngestRefusesBatchWithoutID(t *testing.T) {
	svc, _ := newService(t)
	_, err := svc.Ingest(context.Background(), telemetry.Batch{})
	assert.ErrorIs(t, err, telemetry.ErrInvalid)
}

// slowWriter is the real store, slowed down, recording the size of each write; it refuses
// any write holding the batch "refused", as a database refuses a value it cannot store.
type slowWriter struct {
	*sqlstore.Store
	mu     sync.Mutex
	groups []int
}

func (w *slowWriter) WriteBatches(ctx context.Context, bs []telemetry.Batch) ([]telemetry.Written, error) {
	w.mu.Lock()
	w.groups = append(w.groups, len(bs))
	w.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	for _, b := range bs {
		if b.ID == "refused" {
			return nil, telemetry.Invalid("value", "the database refuses it")
		}
	}
	return w.Store.WriteBatches(ctx, bs)
}

func TestBatchesArrivingTogetherAreWrittenTogether(t *testing.T) {
	_, store := newService(t)
	w := &slowWriter{Store: store}
	svc := ingest.New(w, ingest.Options{Writers: 1})
	t0 := time.Date(2025, 7, 18, 20, 42, 34, 0, time.UTC)
	gpu := telemetry.GPU{UUID: "GPU-1", Hostname: "h"}
	var wg sync.WaitGroup
	results := make([]error, 21)
	for i := range 21 {
		id := fmt.Sprintf("b%d", i)
		if i == 20 {
			id = "refused"
		}
		b := telemetry.Batch{ID: id, GPUs: []telemetry.GPU{gpu},
			Samples: []telemetry.Sample{{GPU: "GPU-1", Metric: "M", Time: t0.Add(time.Duration(i) * time.Second), Value: float64(i)}}}
		wg.Go(func() {
			_, err := svc.Ingest(context.Background(), b)
			results[i] = err
		})
		if i == 0 {
			time.Sleep(10 * time.Millisecond) // the first write is under way when the others come
		}
	}
	wg.Wait()
	for i, err := range results[:20] {
		assert.NoError(t, err, "batch %d stored though another of its group was refused", i)
	}
	assert.ErrorIs(t, results[20], telemetry.ErrInvalid)
	assert.Equal(t, ingest.Stats{Batches: 20, Samples: 20}, svc.Stats())
	st, err := store.Stats(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 20, st.TotalSamples)
	assert.Equal(t, 1, w.groups[0])
	assert.Equal(t, 20, w.groups[1], "the 20 that waited, in one write (then each again, one being refused)")
	assert.Len(t, w.groups, 2+20)
}

// Text a database cannot keep costs only the samples that carry it, on either database:
// the batch is stored, not refused (and archived by the queue).
func TestBadTextCostsOnlyItsSamples(t *testing.T) {
	for name, url := range map[string]func(testing.TB) string{"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL} {
		t.Run(name, func(t *testing.T) {
			store, err := sqlstore.Open(context.Background(), url(t), sqlstore.Options{})
			require.NoError(t, err)
			t.Cleanup(func() { store.Close() })
			svc := ingest.New(store, ingest.Options{})
			t0 := time.Date(2025, 7, 18, 20, 42, 34, 0, time.UTC)
			good := telemetry.GPU{UUID: "GPU-1", Hostname: "h"}
			bad := telemetry.GPU{UUID: "GPU-2", Hostname: "h\x00"}
			b := telemetry.Batch{ID: "mixed", GPUs: []telemetry.GPU{good, bad}, Samples: []telemetry.Sample{
				{GPU: "GPU-1", Metric: "M", Time: t0, Value: 1},
				{GPU: "GPU-2", Metric: "M", Time: t0, Value: 2},
				{GPU: "GPU-1", Metric: "M\xff", Time: t0, Value: 3},
				{GPU: "GPU-1", Metric: "M", Time: t0.Add(time.Second), Value: 4, Pod: "p\x1b"},
				{GPU: "GPU-1", Metric: "N", Time: t0, Value: 5, Pod: "train-0"},
			}}
			res, err := svc.Ingest(context.Background(), b)
			require.NoError(t, err)
			assert.Equal(t, ingest.Result{Stored: true, Samples: 2, Rejected: 3}, res)
			st, err := store.Stats(context.Background())
			require.NoError(t, err)
			assert.EqualValues(t, 2, st.TotalSamples)
			assert.EqualValues(t, 1, st.UniqueGPUs, "the device with a NUL in its host name is not registered")
		})
	}
}
