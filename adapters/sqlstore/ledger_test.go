package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Compaction folds the rows of batches whose window may be sealed into one row a window:
// the ledger stays a few hours long, the stats do not change, and a batch sent again once
// its row is folded still stores nothing twice.
func TestLedgerFoldsWindowsAndKeepsEachSampleOnce(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpus := compactFleet(2)
		writeTicks(t, s, "f", gpus, 3, 0, 3*360, 30) // 3 h at 10 s, 36 batches of 5 min
		before, err := s.Stats(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 3*360*2*3, before.TotalSamples)

		st, err := s.Compact(ctx)
		require.NoError(t, err)
		assert.Equal(t, 24, st.Folded, "the batches of the window over, [0 h, 2 h)")
		rows, err := s.CountRows(ctx, "batches")
		require.NoError(t, err)
		assert.EqualValues(t, 1+12, rows, "the window's row and the last hour's batches")
		after, err := s.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, before, after, "folding changes no count and no time")

		// The first batch again, its row folded: recognised by its samples.
		first := telemetry.Batch{ID: "f-0", GPUs: gpus}
		for tick := range 30 {
			for _, g := range gpus {
				for m := range 3 {
					smp := telemetry.Sample{GPU: g.UUID, Metric: fmt.Sprintf("DCGM_FI_TEST_%02d", m),
						Time: compactT0.Add(time.Duration(tick) * 10 * time.Second), Value: float64(tick*7+m) / 4}
					if m == 0 { // as writeTicks attributes them: a sample is its workload's
						smp.Pod, smp.Namespace = fmt.Sprintf("pod-%d", tick%3), "ml"
					}
					first.Samples = append(first.Samples, smp)
				}
			}
		}
		written, err := s.WriteBatches(ctx, []telemetry.Batch{first})
		require.NoError(t, err)
		assert.Equal(t, len(first.Samples), written[0].AlreadyStored, "every sample was stored before")
		again, err := s.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, before.TotalSamples, again.TotalSamples)

		// Sealing folds the rest, the batch just written into its window's row too.
		st, err = s.Seal(ctx)
		require.NoError(t, err)
		assert.Equal(t, 12+1, st.Folded)
		rows, err = s.CountRows(ctx, "batches")
		require.NoError(t, err)
		assert.EqualValues(t, 2, rows, "one row a window")
		sealed, err := s.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, before, sealed)
		n := 0
		for _, g := range gpus {
			_, err := s.Samples(ctx, telemetry.SampleQuery{GPU: g.UUID}, func(telemetry.Sample) error { n++; return nil })
			require.NoError(t, err)
		}
		assert.EqualValues(t, before.TotalSamples, n)
	})
}
