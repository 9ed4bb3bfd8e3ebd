package sqlstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports/portstest"
)

// TestUpgradeFromRowPerSample fills a database of schema version 2 (a row per sample), then
// opens it: every sample must read back from chunks, and the old table be gone.
func TestUpgradeFromRowPerSample(t *testing.T) {
	defer func(n int) { legacyPage = n }(legacyPage)
	legacyPage = 7 // many pages, most of them cut in the middle of an instant
	for name, newURL := range map[string]func(testing.TB) string{
		"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			url := newURL(t)
			d, dialector, err := dialectorFor(url)
			require.NoError(t, err)
			db, err := gorm.Open(dialector, &gorm.Config{Logger: logger.Discard})
			require.NoError(t, err)
			sqlDB, err := db.DB()
			require.NoError(t, err)
			require.NoError(t, migrateUp(ctx, d, url, sqlDB, 2))
			exec := func(q string, args ...any) {
				t.Helper()
				_, err := sqlDB.ExecContext(ctx, d.rebind(q), args...)
				require.NoError(t, err)
			}
			exec(`INSERT INTO gpus (uuid, hostname, gpu_index, device, model_name, driver_version)
				VALUES ('GPU-a', 'h', 0, 'nvidia0', 'H100', '535'), ('GPU-b', 'h', 1, 'nvidia1', 'H100', '535')`)
			exec(`INSERT INTO metrics (name) VALUES ('M1'), ('M2')`)
			t0 := time.Date(2025, 7, 18, 20, 42, 34, 0, time.UTC)
			want := map[string][]telemetry.Sample{}
			for k := range 30 {
				for gpu, uuid := range []string{"GPU-a", "GPU-b"} {
					for metric, name := range []string{"M1", "M2"} {
						at := t0.Add(time.Duration(k) * 1500 * time.Millisecond)
						smp := telemetry.Sample{GPU: uuid, Metric: name, Time: at, Value: float64(k*10 + metric)}
						var pod any
						if k%7 == 0 {
							smp.Pod, pod = fmt.Sprintf("pod-%d", k), fmt.Sprintf("pod-%d", k)
						}
						exec(`INSERT INTO samples (gpu_id, metric_id, ts, value, pod) VALUES (?, ?, ?, ?, ?)`,
							gpu+1, metric+1, d.ts(at), smp.Value, pod)
						want[uuid] = append(want[uuid], smp)
					}
				}
			}
			require.NoError(t, sqlDB.Close())

			s, err := Open(ctx, url, Options{})
			require.NoError(t, err)
			defer s.Close()
			for uuid, samples := range want {
				page, _, err := portstest.ReadPage(ctx, s, telemetry.SampleQuery{GPU: uuid, Page: telemetry.Page{Limit: 1000}})
				require.NoError(t, err)
				require.Len(t, page, len(samples))
				for i := range samples {
					assert.True(t, samples[i].Time.Equal(page[i].Time))
					page[i].Time = samples[i].Time
				}
				assert.Equal(t, samples, page)
				latest, err := s.Latest(ctx, uuid)
				require.NoError(t, err)
				assert.Len(t, latest, 2, "gpu_metrics filled from the old rows")
			}
			var legacy int64
			probe := `SELECT count(*) FROM sqlite_master WHERE name = 'legacy_samples'`
			if name == "postgres" {
				probe = `SELECT count(*) FROM pg_class WHERE relname = 'legacy_samples'`
			}
			require.NoError(t, s.sqlDB.QueryRowContext(ctx, probe).Scan(&legacy))
			assert.Zero(t, legacy, "old table dropped")
		})
	}
}
