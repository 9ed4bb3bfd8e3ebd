// Package sqlstoretest gives tests a database of their own: a fresh SQLite file, or a fresh
// PostgreSQL database on the server named by TEST_DATABASE_URL (default: the local server),
// dropped when the test ends.
package sqlstoretest

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" database/sql driver
)

// DefaultAdminURL is the PostgreSQL server tests use unless TEST_DATABASE_URL says otherwise.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// SQLiteURL returns the URL of a fresh SQLite file in the test's temporary directory.
func SQLiteURL(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "telemetry.db")
}

// PostgresURL creates an empty database for the test and returns its URL. When no server
// answers, the test is skipped — or fails under CI=true, where a missing service must never
// pass silently.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = DefaultAdminURL
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s is required under CI=true: %v", admin, err)
		}
		t.Skipf("no PostgreSQL at %s (%v); run make test to start one", admin, err)
	}
	name := "telemetry_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Autovacuum turns the server's autovacuum on for the rest of the test when it is off, as
// CI machines may set it, and back off after: a benchmark of bytes on disk as a user finds
// them measures PostgreSQL as it ships, whose autovacuum lets deleted rows' space be reused.
func Autovacuum(t testing.TB) {
	t.Helper()
	admin := cmp.Or(os.Getenv("TEST_DATABASE_URL"), DefaultAdminURL)
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	defer db.Close()
	var on string
	if err := db.QueryRow(`SHOW autovacuum`).Scan(&on); err != nil {
		t.Fatalf("ask whether autovacuum is on: %v", err)
	}
	if on == "on" {
		return
	}
	set := func(stmt string) error {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return err
		}
		defer db.Close()
		if _, err := db.Exec(stmt); err != nil {
			return err
		}
		_, err = db.Exec(`SELECT pg_reload_conf()`)
		return err
	}
	if err := set(`ALTER SYSTEM SET autovacuum = on`); err != nil {
		t.Fatalf("turn autovacuum on: %v", err)
	}
	t.Logf("autovacuum was off on %s: on for this test, as PostgreSQL ships", admin)
	t.Cleanup(func() {
		if err := set(`ALTER SYSTEM RESET autovacuum`); err != nil {
			t.Logf("turn autovacuum back off: %v", err)
		}
	})
}

// Must fails the test on err; a small helper for setup code.
func Must[T any](t testing.TB, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatal(fmt.Sprint(err))
	}
	return v
}
