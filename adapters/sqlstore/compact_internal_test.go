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

// A GPU whose chunks cannot be merged (one is corrupt) is left as it is; the others are
// compacted all the same.
func TestCompactionSkipsAGPUItCannotMerge(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, sqlstoretest.PostgresURL(t), Options{})
	require.NoError(t, err)
	defer s.Close()
	gpus := []telemetry.GPU{{UUID: "GPU-ok", Hostname: "h"}, {UUID: "GPU-bad", Hostname: "h"}}
	t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	for b := range 60 {
		batch := telemetry.Batch{ID: fmt.Sprint("b", b), GPUs: gpus}
		for _, g := range gpus {
			for m := range 10 {
				batch.Samples = append(batch.Samples, telemetry.Sample{GPU: g.UUID, Metric: fmt.Sprint("M", m),
					Time: t0.Add(time.Duration(b) * 10 * time.Second), Value: float64(m)})
			}
		}
		_, err := s.WriteBatch(ctx, batch)
		require.NoError(t, err)
	}
	bad, err := s.gpuID(ctx, "GPU-bad")
	require.NoError(t, err)
	_, err = s.sqlDB.ExecContext(ctx, `UPDATE chunks SET data = '\xff' WHERE id = (SELECT min(id) FROM chunks WHERE gpu_id = $1)`, bad)
	require.NoError(t, err)

	st, err := s.Compact(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, st.GPUs, "the good GPU")
	assert.Equal(t, 60, st.ChunksRead)
	var unsealed int
	require.NoError(t, s.sqlDB.QueryRowContext(ctx, `SELECT count(*) FROM chunks WHERE gpu_id = $1 AND NOT sealed`, bad).Scan(&unsealed))
	assert.Equal(t, 60, unsealed, "the bad GPU's chunks are all still there")
}

// A chunk stored twice — as two writers racing with the same samples leave it — is read
// once, and merging drops the repeats for good, the stats with them.
func TestRepeatsReadOnceAndDroppedByCompaction(t *testing.T) {
	ctx := context.Background()
	for name, url := range map[string]string{"postgres": sqlstoretest.PostgresURL(t), "sqlite": sqlstoretest.SQLiteURL(t)} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(ctx, url, Options{})
			require.NoError(t, err)
			defer s.Close()
			gpu := []telemetry.GPU{{UUID: "GPU-r", Hostname: "h"}}
			t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
			for b := range 60 { // enough for a compaction
				batch := telemetry.Batch{ID: fmt.Sprint("r", b), GPUs: gpu}
				for m := range 10 {
					batch.Samples = append(batch.Samples, telemetry.Sample{GPU: "GPU-r", Metric: fmt.Sprint("M", m),
						Time: t0.Add(time.Duration(b) * 10 * time.Second), Value: float64(b*10 + m)})
				}
				_, err := s.WriteBatch(ctx, batch)
				require.NoError(t, err)
			}
			_, err = s.sqlDB.ExecContext(ctx, `INSERT INTO chunks (gpu_id, min_ts, max_ts, samples, data, sealed)
				SELECT gpu_id, min_ts, max_ts, samples, data, sealed FROM chunks WHERE id IN (SELECT id FROM chunks ORDER BY id LIMIT 5)`)
			require.NoError(t, err)
			// The racing writer's batch row, which counts its samples as stored.
			_, err = s.sqlDB.ExecContext(ctx, s.dialect.rebind(`INSERT INTO batches (id, samples, stored_at, min_ts, max_ts) VALUES ('race', 50, ?, ?, ?)`),
				s.dialect.ts(t0), s.dialect.ts(t0), s.dialect.ts(t0.Add(40*time.Second)))
			require.NoError(t, err)
			total := func() int64 {
				st, err := s.Stats(ctx)
				require.NoError(t, err)
				return st.TotalSamples
			}
			assert.EqualValues(t, 650, total(), "the stats count both writers until compaction finds the repeats")
			read := func() int {
				n := 0
				_, err := s.Samples(ctx, telemetry.SampleQuery{GPU: "GPU-r"}, func(telemetry.Sample) error { n++; return nil })
				require.NoError(t, err)
				return n
			}
			assert.Equal(t, 600, read(), "five chunks stored twice, read once")
			st, err := s.Compact(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, st.GPUs)
			var stored int
			require.NoError(t, s.sqlDB.QueryRowContext(ctx, `SELECT sum(samples) FROM chunks`).Scan(&stored))
			assert.Equal(t, 600, stored, "merged without the repeats")
			assert.Equal(t, 600, read())
			assert.EqualValues(t, 600, total(), "and the stats count each sample once again")
		})
	}
}
