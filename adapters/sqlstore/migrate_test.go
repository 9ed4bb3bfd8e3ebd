package sqlstore

import (
	"context"
	"database/sql"
	"io"
	"io/fs"
	"os"
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
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/migrations"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports/portstest"
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

// prerelease brings a new database to version of the pre-release chain of migrations
// (testdata/prerelease), as a build of it would have, and returns it open without the
// store.
func prerelease(t *testing.T, url string, version uint) (*sql.DB, dialect) {
	t.Helper()
	return migrated(t, url, func(d string) (fs.FS, error) { return os.DirFS("testdata/prerelease/" + d), nil }, version)
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

// A database the pre-release chain brought to its last version is taken over as it is:
// its samples read back, and chunks its compactor sealed in head chunk format become
// blocks. An older one, or one holding the first chunk format, is refused, naming why.
func TestPrereleaseDatabasesAreTakenOverAtTheirLastVersion(t *testing.T) {
	ctx := context.Background()
	for name, newURL := range map[string]func(testing.TB) string{
		"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			url := newURL(t)
			db, d := prerelease(t, url, prereleaseLast)
			exec := func(q string, args ...any) {
				t.Helper()
				_, err := db.ExecContext(ctx, d.rebind(q), args...)
				require.NoError(t, err)
			}
			exec(`INSERT INTO gpus (id, uuid, hostname, gpu_index, device, model_name, driver_version) VALUES (1, 'GPU-p', 'h', 0, 'nvidia0', 'H100', '535')`)
			exec(`INSERT INTO metrics (id, name) VALUES (1, 'DCGM_FI_DEV_GPU_TEMP')`)
			exec(`INSERT INTO gpu_metrics VALUES (1, 1)`)
			t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
			var pts []engine.Point
			for i := range 300 { // 50 minutes at 10 s: a full chunk the old compactor sealed, and more
				pts = append(pts, engine.Point{TS: t0.Add(time.Duration(i) * 10 * time.Second).UnixMicro(), Metric: 1, Value: float64(40 + i%7)})
			}
			chunks, _ := engine.Cut(1, slices.Clone(pts), nil)
			for i, c := range chunks {
				exec(`INSERT INTO chunks (gpu_id, min_ts, max_ts, samples, data, sealed) VALUES (?, ?, ?, ?, ?, ?)`, c.Device,
					d.ts(time.UnixMicro(c.MinTS)), d.ts(time.UnixMicro(c.MaxTS)), c.Samples, c.Data, i == 0)
			}
			exec(`INSERT INTO batches (id, samples, stored_at, min_ts, max_ts) VALUES ('b', 300, ?, ?, ?)`, d.ts(t0), d.ts(t0), d.ts(t0.Add(50*time.Minute)))

			s, err := Open(ctx, url, Options{})
			require.NoError(t, err)
			defer s.Close()
			var version int
			require.NoError(t, s.sqlDB.QueryRowContext(ctx, `SELECT version FROM schema_migrations`).Scan(&version))
			assert.Equal(t, latestVersion(t, s.dialect), version, "taken over, then migrated on")
			sealed, err := s.CountRows(ctx, "chunks WHERE sealed")
			require.NoError(t, err)
			assert.Zero(t, sealed, "what the old compactor sealed is a head chunk again")
			read := func() []telemetry.Sample {
				all, _, err := portstest.ReadPage(ctx, s, telemetry.SampleQuery{GPU: "GPU-p"})
				require.NoError(t, err)
				return all
			}
			before := read()
			require.Len(t, before, 300)
			latest, err := s.Latest(ctx, "GPU-p")
			require.NoError(t, err)
			assert.Len(t, latest, 1, "which metric the GPU reports, carried over from gpu_metrics")
			st, err := s.Seal(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, st.Sealed, "one block of the window")
			assert.Equal(t, before, read())

			older := newURL(t)
			prerelease(t, older, 5)
			_, err = Open(ctx, older, Options{})
			require.ErrorIs(t, err, ErrPrerelease)
			assert.Contains(t, err.Error(), "version 5")

			first := newURL(t)
			db, d = prerelease(t, first, prereleaseLast)
			_, err = db.ExecContext(ctx, d.rebind(`INSERT INTO chunks (gpu_id, min_ts, max_ts, samples, data) VALUES (1, ?, ?, 1, ?)`),
				d.ts(t0), d.ts(t0), []byte{1, 0, 1, 0, 0, 0, 0})
			require.NoError(t, err)
			_, err = Open(ctx, first, Options{})
			require.ErrorIs(t, err, ErrPrerelease)
			assert.Contains(t, err.Error(), "chunks of format 1")
		})
	}
}

func TestDriverErrorsKeepTheirCause(t *testing.T) {
	err := unwrapDriverError(database.Error{OrigErr: io.ErrUnexpectedEOF, Err: "try lock failed", Query: []byte("SELECT pg_advisory_lock($1)")})
	assert.ErrorIs(t, classify(err), telemetry.ErrUnavailable, "a database gone mid-migration is retried")
	assert.Contains(t, err.Error(), "try lock failed")
}

// The pre-release chain's last version and the schema's one migration make the same tables,
// columns and indexes: what taking a database over at that version relies on.
func TestSchemaEqualsThePrereleaseChainsLast(t *testing.T) {
	ctx := context.Background()
	for name, newURL := range map[string]func(testing.TB) string{
		"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			describe := func(db *sql.DB, d dialect) []string {
				q := `SELECT c.table_name || '.' || c.column_name || ' ' || c.data_type || ' ' || c.is_nullable || ' ' ||
					coalesce(c.column_default, '') FROM information_schema.columns c
					WHERE c.table_schema = current_schema() AND c.table_name NOT LIKE 'chunks\_p%'
					UNION ALL SELECT indexname || ': ' || regexp_replace(indexdef, ' ON (ONLY )?', ' ON ') FROM pg_indexes
					WHERE schemaname = current_schema()`
				if d.name == "sqlite" {
					q = `SELECT m.name || '.' || p.name || ' ' || p.type || ' ' || p."notnull" || ' ' || coalesce(p.dflt_value, '') || ' ' || p.pk
						FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'
						UNION ALL SELECT name || ': ' || coalesce(sql, '') FROM sqlite_master WHERE type = 'index'`
				}
				rows, err := db.QueryContext(ctx, q)
				require.NoError(t, err)
				defer rows.Close()
				var out []string
				for rows.Next() {
					var line string
					require.NoError(t, rows.Scan(&line))
					out = append(out, strings.Join(strings.Fields(line), " "))
				}
				require.NoError(t, rows.Err())
				slices.Sort(out)
				return out
			}
			old, d := prerelease(t, newURL(t), prereleaseLast)
			_, err := old.ExecContext(ctx, `DROP TABLE legacy_samples`) // as the pre-release store did when it opened
			require.NoError(t, err)
			fresh, _ := migrated(t, newURL(t), schema.fs, schemaVersion)
			assert.Equal(t, describe(old, d), describe(fresh, d))
		})
	}
}
