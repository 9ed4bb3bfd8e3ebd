package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
)

// A database URL naming a database a fresh PostgreSQL does not have yet gets it created
// when the role may; a role that may not is told how to create it.
func TestOpenCreatesAMissingDatabase(t *testing.T) {
	server := sqlstoretest.PostgresURL(t) // a database of the test's; the server is what counts
	admin, err := sql.Open("pgx", server)
	require.NoError(t, err)
	defer admin.Close()
	ctx := context.Background()
	suffix := strings.ToLower(rand.Text()[:10])
	created, role := "telemetry_created_"+suffix, "telemetry_nocreate_"+suffix
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + created + " WITH (FORCE)")
		_, _ = admin.Exec("DROP ROLE IF EXISTS " + role)
	})

	u, err := url.Parse(server)
	require.NoError(t, err)
	u.Path = "/" + created
	s, err := sqlstore.Open(ctx, u.String(), sqlstore.Options{})
	require.NoError(t, err, "the database is created, then migrated")
	require.NoError(t, s.Close())

	_, err = admin.Exec("CREATE ROLE " + role + " LOGIN NOCREATEDB")
	require.NoError(t, err)
	u.User = url.User(role)
	u.Path = "/" + created + "_not"
	_, err = sqlstore.Open(ctx, u.String(), sqlstore.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `database "`+created+`_not" does not exist, and could not be created`)
	assert.Contains(t, err.Error(), "create it with createdb -h 127.0.0.1 -p 5432 -U "+role+" "+created+"_not")
}
