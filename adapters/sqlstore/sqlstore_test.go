package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports/portstest"
)

func open(t testing.TB, url string) *sqlstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlstore.Open(ctx, url, sqlstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLiteContract(t *testing.T) {
	portstest.TestStore(t, func(t *testing.T) portstest.Store { return open(t, sqlstoretest.SQLiteURL(t)) })
}

func TestPostgresContract(t *testing.T) {
	portstest.TestStore(t, func(t *testing.T) portstest.Store { return open(t, sqlstoretest.PostgresURL(t)) })
}

func TestReopenKeepsDataAndSkipsMigrations(t *testing.T) {
	for name, newURL := range map[string]func(testing.TB) string{
		"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			url := newURL(t)
			s := open(t, url)
			_, err := s.WriteBatch(context.Background(), portstest.SampleBatch("kept", 3))
			require.NoError(t, err)
			require.NoError(t, s.Close())

			again := open(t, url)
			st, err := again.Stats(context.Background())
			require.NoError(t, err)
			t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			assert.Equal(t, telemetry.Stats{TotalSamples: 3, UniqueGPUs: 1, UniqueHosts: 1, Oldest: t0, Newest: t0.Add(2 * time.Second)}, st)
			stored, err := again.WriteBatch(context.Background(), portstest.SampleBatch("kept", 3))
			require.NoError(t, err)
			assert.False(t, stored, "batch IDs survive a restart")
		})
	}
}

func TestConcurrentStartsMigrateOnce(t *testing.T) {
	url := sqlstoretest.PostgresURL(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := sqlstore.Open(context.Background(), url, sqlstore.Options{})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		assert.NoError(t, <-errs)
	}
}

func TestUnreachableDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := sqlstore.Open(ctx, "postgres://nobody:secret@127.0.0.1:1/none?sslmode=disable", sqlstore.Options{})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second, "gives up when its context ends")
	assert.Contains(t, err.Error(), "unreachable")
	assert.NotContains(t, err.Error(), "secret", "passwords never reach logs")
}

func TestBadURL(t *testing.T) {
	for _, url := range []string{"mysql://x", "sqlite:", "telemetry.db"} {
		_, err := sqlstore.Open(context.Background(), url, sqlstore.Options{})
		assert.Error(t, err, url)
	}
}

func TestRedact(t *testing.T) {
	assert.Equal(t, "postgres://u:xxxxx@h/db", sqlstore.Redact("postgres://u:pw@h/db"))
	assert.Equal(t, "postgres://u@h/db", sqlstore.Redact("postgres://u@h/db"))
	assert.Equal(t, "sqlite:x.db", sqlstore.Redact("sqlite:x.db"))
}
