package sqlstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func TestDevicesPerQueryFollowsTheWindow(t *testing.T) {
	t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	over := func(d time.Duration) window {
		return windowOf(telemetry.TimeRange{Start: t0, End: t0.Add(d)})
	}
	assert.Equal(t, 256, devicesPerQuery(over(time.Hour)), "a fleet's last hour in one query")
	assert.Equal(t, 146, devicesPerQuery(over(6*time.Hour)))
	assert.Equal(t, 64, devicesPerQuery(over(7*24*time.Hour)), "never fewer than 64")
	assert.Equal(t, 64, devicesPerQuery(windowOf(telemetry.TimeRange{Start: t0})), "open-ended")
}

// A fleet read over a long window takes several queries; every device's series comes once,
// whole.
func TestSeriesAcrossQueries(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, sqlstoretest.PostgresURL(t), Options{})
	require.NoError(t, err)
	defer s.Close()
	t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	var gpus []telemetry.GPU
	for i := range 150 {
		gpus = append(gpus, telemetry.GPU{UUID: fmt.Sprintf("GPU-%03d", i), Hostname: fmt.Sprint("h", i/8), Index: i % 8})
	}
	q := telemetry.SeriesQuery{Range: telemetry.TimeRange{Start: t0, End: t0.Add(48 * time.Hour)}}
	require.Greater(t, len(gpus), 2*devicesPerQuery(windowOf(q.Range)), "three queries at least")
	for b := range 4 { // a batch every 12 hours
		batch := telemetry.Batch{ID: fmt.Sprint("b", b), GPUs: gpus}
		for _, g := range gpus {
			batch.Samples = append(batch.Samples, telemetry.Sample{GPU: g.Key(), Metric: "DCGM_FI_DEV_GPU_TEMP",
				Time: t0.Add(time.Duration(b) * 12 * time.Hour), Value: float64(b)})
		}
		_, err := s.WriteBatch(ctx, batch)
		require.NoError(t, err)
	}
	for _, g := range gpus {
		q.GPUs = append(q.GPUs, g.Key())
	}
	seen := map[string]int{}
	require.NoError(t, s.Series(ctx, q, func(series telemetry.Series) error {
		seen[series.GPU]++
		assert.Len(t, series.Points, 4, series.GPU)
		return nil
	}))
	assert.Len(t, seen, len(gpus))
	for key, n := range seen {
		assert.Equal(t, 1, n, key)
	}
}
