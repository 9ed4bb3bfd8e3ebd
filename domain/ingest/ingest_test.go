package ingest_test

import (
	"context"
	"log/slog"
	"math"
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
	return ingest.New(store, slog.New(slog.DiscardHandler), 0), store
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
