package sqlstore

import (
	"context"
	"database/sql"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4/database"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/migrations"
)

// A migration cut short — the database went away, the process was killed — leaves its
// version marked dirty and, being one transaction, nothing else: the next start applies it
// again instead of refusing to start.
func TestMigrationCutShortIsAppliedAgain(t *testing.T) {
	ctx := context.Background()
	for name, newURL := range map[string]func(testing.TB) string{
		"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			url := newURL(t)
			s, err := Open(ctx, url, Options{})
			require.NoError(t, err)
			downs, err := fs.Glob(migrations.FS, s.dialect.name+"/*.down.sql")
			require.NoError(t, err)
			slices.Reverse(downs)
			for _, file := range downs { // every migration undone, the first marked cut short
				down, err := migrations.FS.ReadFile(file)
				require.NoError(t, err)
				_, err = s.sqlDB.ExecContext(ctx, string(down))
				require.NoError(t, err, file)
			}
			_, err = s.sqlDB.ExecContext(ctx, `UPDATE schema_migrations SET version = 100, dirty = true`)
			require.NoError(t, err)
			require.NoError(t, s.Close())

			s, err = Open(ctx, url, Options{})
			require.NoError(t, err)
			defer s.Close()
			var version int
			var dirty bool
			require.NoError(t, s.sqlDB.QueryRowContext(ctx, `SELECT version, dirty FROM schema_migrations`).Scan(&version, &dirty))
			assert.Equal(t, latestVersion(t, s.dialect), version, "applied again, and the ones after it")
			assert.False(t, dirty)
			_, err = s.CountRows(ctx, "chunks")
			assert.NoError(t, err, "the tables are back")
		})
	}
}

// latestVersion is the version of the schema's last migration.
func latestVersion(t *testing.T, d dialect) int {
	t.Helper()
	ups, err := fs.Glob(migrations.FS, d.name+"/*.up.sql")
	require.NoError(t, err)
	slices.Sort(ups)
	v, err := strconv.Atoi(strings.SplitN(path.Base(ups[len(ups)-1]), "_", 2)[0])
	require.NoError(t, err)
	return v
}

// migrated brings a new database to version of a chain, without the store.
func migrated(t *testing.T, url string, chainFS func(string) (fs.FS, error), version uint) (*sql.DB, dialect) {
	t.Helper()
	d, dialector, err := dialectorFor(url)
	require.NoError(t, err)
	db, err := gorm.Open(dialector, &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	t.Cleanup(func() { sqlDB.Close() })
	require.NoError(t, migrateUp(context.Background(), d, url, sqlDB, chain{fs: chainFS, version: version}))
	return sqlDB, d
}

// A database a pre-release version made (a schema version before the one migration) is
// refused, naming its version and what to do, and left as it was.
func TestPrereleaseDatabasesAreRefused(t *testing.T) {
	ctx := context.Background()
	for name, newURL := range map[string]func(testing.TB) string{
		"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			url := newURL(t)
			db, _ := migrated(t, url, schema.fs, schemaVersion)
			_, err := db.ExecContext(ctx, `UPDATE schema_migrations SET version = 11`)
			require.NoError(t, err)
			_, err = Open(ctx, url, Options{})
			require.ErrorIs(t, err, ErrPrerelease)
			assert.Contains(t, err.Error(), "its schema is at version 11, before 100")
			assert.Contains(t, err.Error(), "use a new database")
			var version int
			require.NoError(t, db.QueryRowContext(ctx, `SELECT version FROM schema_migrations`).Scan(&version))
			assert.Equal(t, 11, version, "left as it was")
		})
	}
}

func TestDriverErrorsKeepTheirCause(t *testing.T) {
	err := unwrapDriverError(database.Error{OrigErr: io.ErrUnexpectedEOF, Err: "try lock failed", Query: []byte("SELECT pg_advisory_lock($1)")})
	assert.ErrorIs(t, classify(err), telemetry.ErrUnavailable, "a database gone mid-migration is retried")
	assert.Contains(t, err.Error(), "try lock failed")
}

// A store the version before the tiers wrote — sealed blocks and head chunks in one table —
// is upgraded in place: every sample reads back, and the compactor gives the windows sealed
// before their tiers, which then answer as the samples do.
func TestUpgradeToTheTiers(t *testing.T) {
	ctx := context.Background()
	url := sqlstoretest.PostgresURL(t)
	db, _ := migrated(t, url, schema.fs, 102)
	_, err := db.ExecContext(ctx, `INSERT INTO gpus (id, uuid, hostname, gpu_index, device, model_name, driver_version, metric_ids)
		VALUES (1, 'GPU-old', 'host-old', 0, 'nvidia0', 'H100', '550', '{1,2}');
		INSERT INTO metrics (id, name) VALUES (1, 'DCGM_FI_DEV_GPU_UTIL'), (2, 'DCGM_FI_DEV_POWER_USAGE')`)
	require.NoError(t, err)
	t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	var pts []engine.Point
	for i := range 5 * 360 { // five hours at 10 s: two windows sealed, one open
		ts := t0 + int64(i)*10_000_000
		pts = append(pts, engine.Point{TS: ts, Metric: 1, Value: float64(i % 101)}, engine.Point{TS: ts, Metric: 2, Value: float64(i%4000) / 10})
	}
	var chunks []engine.Chunk
	for _, w := range []engine.Window{engine.WindowOf(t0), engine.WindowOf(t0 + engine.BlockSpan.Microseconds())} {
		var in []engine.Point
		for _, p := range pts {
			if w.Holds(p.TS) {
				in = append(in, p)
			}
		}
		sealed, _, _ := engine.Seal(1, w, in)
		chunks = append(chunks, sealed...)
	}
	chunks, _ = engine.Cut(1, pts[2*2*720:], chunks)
	for _, c := range chunks {
		_, err := db.ExecContext(ctx, `INSERT INTO chunks (gpu_id, min_ts, max_ts, samples, data, sealed) VALUES ($1, $2, $3, $4, $5, $6)`,
			c.Device, time.UnixMicro(c.MinTS), time.UnixMicro(c.MaxTS), c.Samples, c.Data, c.Sealed)
		require.NoError(t, err)
	}

	s, err := Open(ctx, url, Options{})
	require.NoError(t, err)
	defer s.Close()
	var n int
	_, err = s.Samples(ctx, telemetry.SampleQuery{GPU: "GPU-old"}, func(telemetry.Sample) error { n++; return nil })
	require.NoError(t, err)
	assert.Equal(t, len(pts), n, "every sample, from blocks and head chunks alike")
	heads, err := s.CountRows(ctx, "chunks_heads")
	require.NoError(t, err)
	assert.Positive(t, heads, "the head chunks moved to their table")
	st, err := s.Compact(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, st.Backfilled, "the two windows sealed before the tiers")

	svc := query.New(s, s, s, s).WithTiers(s)
	q := telemetry.AggregateQuery{GPU: "GPU-old", Step: time.Hour, Agg: telemetry.AggAvg,
		Range: telemetry.TimeRange{Start: time.UnixMicro(t0), End: time.UnixMicro(t0).Add(5*time.Hour - time.Microsecond)}}
	tiered, err := svc.Aggregate(ctx, q)
	require.NoError(t, err)
	q.MaxResolution = telemetry.RawResolution
	raw, err := svc.Aggregate(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, time.Hour, tiered.Resolution)
	assert.Equal(t, raw.Buckets, tiered.Buckets)
}

// The usage sums of a store made before they were kept by device id move to the new
// tables whole, and read back alike, as rows of the views too.
func TestUpgradeTheUsageSums(t *testing.T) {
	ctx := context.Background()
	url := sqlstoretest.PostgresURL(t)
	db, _ := migrated(t, url, schema.fs, 106)
	hour := time.Date(2025, 7, 1, 5, 0, 0, 0, time.UTC)
	_, err := db.ExecContext(ctx, `INSERT INTO gpus (id, uuid, hostname, gpu_index, device, model_name, driver_version, gpu_instance)
		VALUES (7, 'GPU-mig', 'host-u', 0, 'nvidia0', 'A100', '550', '1');
		INSERT INTO workload_cursor (id, through, started_at) VALUES (1, '2025-07-01T07:00:00Z', now());
		INSERT INTO usage_hourly VALUES ('2025-07-01T05:00:00Z', 'GPU-mig', '1', 'ml', 'p', 'host-u', 'A100', 'DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100', 1800, 1800, 90000, 360000, 4096, 180),
			('2025-07-01T06:00:00Z', 'GPU-mig', '1', 'ml', 'p', 'host-u', 'A100', 'DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100', 3600, 3600, 180000, 720000, NULL, 360);
		INSERT INTO usage_daily VALUES ('2025-07-01T00:00:00Z', 'GPU-mig', '1', 'ml', 'p', 'host-u', 'A100', 'DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100', 5400, 5400, 270000, 1080000, 4096, 540)`)
	require.NoError(t, err)

	s, err := Open(ctx, url, Options{})
	require.NoError(t, err)
	defer s.Close()
	parts, from, until, err := s.UsageParts(ctx, telemetry.UsagePartQuery{Range: telemetry.TimeRange{Start: hour, End: hour.Add(2 * time.Hour)}, Per: telemetry.GroupPod})
	require.NoError(t, err)
	assert.True(t, from.Equal(hour) && until.Equal(hour.Add(2*time.Hour)), "%s to %s", from, until)
	require.Len(t, parts, 1)
	p := parts[0]
	assert.Equal(t, telemetry.UsagePart{GPU: telemetry.GPU{UUID: "GPU-mig", Instance: "1", Hostname: "host-u", ModelName: "A100"},
		Namespace: "ml", Pod: "p", Signal: "DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100", Seconds: 5400, UtilSeconds: 5400,
		UtilWeighted: 270000, Joules: 1080000, PeakMemory: 4096, Samples: 540, HeldSeconds: 5400}, p)
	var rows int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM usage_hourly WHERE uuid = 'GPU-mig' AND util_signal LIKE 'DCGM_FI_PROF%'`).Scan(&rows))
	assert.Equal(t, 2, rows, "the view's rows")
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM usage_daily WHERE hostname = 'host-u'`).Scan(&rows))
	assert.Equal(t, 1, rows)
}
