package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Three hours of samples pruned to the last hour: the two older hours go (up to a chunk's
// span around the cutoff), the last hour stays whole, and the stats count what is left.
func TestPruneKeepsTheRetainedWindow(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpus := compactFleet(2)
		writeTicks(t, s, "r", gpus, 3, 0, 3*360, 30) // 3 h at 10 s, batches of 5 min
		if _, err := s.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		cutoff := compactT0.Add(2 * time.Hour)
		st, err := s.Prune(ctx, cutoff)
		require.NoError(t, err)
		assert.Positive(t, st.Chunks)
		assert.Equal(t, int64(24), st.Batches, "the batches of the two old hours")

		count, oldest := 0, time.Time{}
		for _, g := range gpus {
			_, err := s.Samples(ctx, telemetry.SampleQuery{GPU: g.UUID}, func(smp telemetry.Sample) error {
				if count == 0 || smp.Time.Before(oldest) {
					oldest = smp.Time
				}
				count++
				return nil
			})
			require.NoError(t, err)
			n := 0
			_, err = s.Samples(ctx, telemetry.SampleQuery{GPU: g.UUID, Range: telemetry.TimeRange{Start: cutoff}}, func(telemetry.Sample) error { n++; return nil })
			require.NoError(t, err)
			assert.Equal(t, 360*3, n, "%s: the retained hour is whole", g.UUID)
		}
		assert.False(t, oldest.Before(cutoff.Add(-15*time.Minute)), "nothing older than a chunk's span before the cutoff: %s", oldest)
		stats, err := s.Stats(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, count, stats.TotalSamples, "the stats count what is left")

		again, err := s.Prune(ctx, cutoff)
		require.NoError(t, err)
		assert.Zero(t, again.Chunks+again.Batches, "a second pass at the same cutoff deletes nothing")
	})
}

// A day of writes pruned to the last hour as it goes: no table keeps growing.
func TestPruningBoundsEveryTable(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpus := compactFleet(2)
		rows := func() (chunks, batches int64) {
			var err error
			chunks, err = s.CountRows(ctx, "chunks")
			require.NoError(t, err)
			batches, err = s.CountRows(ctx, "batches")
			require.NoError(t, err)
			return chunks, batches
		}
		var peakFirst, peakLast [2]int64
		for step := range 24 * 6 { // every 10 simulated minutes
			writeTicks(t, s, "d", gpus, 3, step*60, 60, 60)
			now := compactT0.Add(time.Duration(step+1) * 10 * time.Minute)
			_, err := s.Compact(ctx)
			require.NoError(t, err)
			_, err = s.Prune(ctx, now.Add(-time.Hour))
			require.NoError(t, err)
			c, b := rows()
			peak := &peakFirst
			if step >= 12*6 {
				peak = &peakLast
			}
			peak[0], peak[1] = max(peak[0], c), max(peak[1], b)
		}
		t.Logf("peak rows, first and second half of the day: chunks %d, %d; batches %d, %d", peakFirst[0], peakLast[0], peakFirst[1], peakLast[1])
		assert.LessOrEqual(t, peakLast[0], peakFirst[0], "chunks stay bounded")
		assert.LessOrEqual(t, peakLast[1], peakFirst[1], "batches stay bounded")
	})
}

// Retention counts back from the newest sample, never from later than now.
func TestCutoffFollowsTheNewestSample(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		now := time.Now()
		empty, err := s.Cutoff(ctx, time.Hour, now)
		require.NoError(t, err)
		assert.True(t, empty.IsZero(), "an empty store has no cutoff: the first batches of an old file stay")

		writeTicks(t, s, "old", compactFleet(1), 1, 0, 10, 10) // 2025-07-01, last at 00:01:30
		old, err := s.Cutoff(ctx, time.Hour, now)
		require.NoError(t, err)
		assert.True(t, old.Equal(compactT0.Add(90*time.Second-time.Hour)), "an import of old data is kept: %s", old)

		future := telemetry.Batch{ID: "future", GPUs: compactFleet(1), Samples: []telemetry.Sample{
			{GPU: "GPU-c-0", Metric: "DCGM_FI_TEST_00", Time: now.Add(100 * 24 * time.Hour), Value: 1}}}
		_, err = s.WriteBatch(ctx, future)
		require.NoError(t, err)
		capped, err := s.Cutoff(ctx, time.Hour, now)
		require.NoError(t, err)
		assert.True(t, capped.Equal(now.Add(-time.Hour)), "a sample from the future moves it no further than now: %s", capped)
	})
}
