package sqlstore

import (
	"context"
	"io"
	"io/fs"
	"slices"
	"testing"

	"github.com/golang-migrate/migrate/v4/database"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
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
			latest := len(downs)
			for _, file := range downs[:latest-5] { // from the latest down to 6
				down, err := migrations.FS.ReadFile(file)
				require.NoError(t, err)
				_, err = s.sqlDB.ExecContext(ctx, string(down))
				require.NoError(t, err, file)
			}
			_, err = s.sqlDB.ExecContext(ctx, `UPDATE schema_migrations SET version = 6, dirty = true`)
			require.NoError(t, err)
			require.NoError(t, s.Close())

			s, err = Open(ctx, url, Options{})
			require.NoError(t, err)
			defer s.Close()
			var version int
			var dirty bool
			require.NoError(t, s.sqlDB.QueryRowContext(ctx, `SELECT version, dirty FROM schema_migrations`).Scan(&version, &dirty))
			assert.Equal(t, latest, version, "6 applied again, and the later ones after it")
			assert.False(t, dirty)
			var n int
			require.NoError(t, s.sqlDB.QueryRowContext(ctx, `SELECT count(gpu_instance) FROM gpus`).Scan(&n), "migration 6 applied again")
		})
	}
}

func TestDriverErrorsKeepTheirCause(t *testing.T) {
	err := unwrapDriverError(database.Error{OrigErr: io.ErrUnexpectedEOF, Err: "try lock failed", Query: []byte("SELECT pg_advisory_lock($1)")})
	assert.ErrorIs(t, classify(err), telemetry.ErrUnavailable, "a database gone mid-migration is retried")
	assert.Contains(t, err.Error(), "try lock failed")
}
