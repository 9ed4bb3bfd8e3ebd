package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/telemetry-pipeline/telemetry-pipeline/migrations"
)

// The schema is one migration per dialect, version schemaVersion. The versions before it
// were pre-release ones, whose databases this version does not upgrade (refuseOld).
const schemaVersion = 100

// ErrPrerelease reports a database made by a pre-release version.
var ErrPrerelease = errors.New("database made by a pre-release version")

// chain is a chain of migrations to apply: the schema's, or in tests another one.
type chain struct {
	fs        func(dialect string) (fs.FS, error)
	refuseOld bool // refuse databases of a version before schemaVersion
	version   uint // migrate up to this version; 0: all
}

var schema = chain{fs: func(d string) (fs.FS, error) { return fs.Sub(migrations.FS, d) }, refuseOld: true}

// latest is the last version of the chain's migrations for the dialect.
func (c chain) latest(dialect string) (uint, error) {
	sub, err := c.fs(dialect)
	if err != nil {
		return 0, err
	}
	src, err := iofs.New(sub, ".")
	if err != nil {
		return 0, err
	}
	defer src.Close()
	v, err := src.First()
	for err == nil {
		var next uint
		if next, err = src.Next(v); err == nil {
			v = next
		}
	}
	if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	return v, nil
}

// migrateUp applies the chain's pending migrations. On PostgreSQL it works on its own
// connection and holds golang-migrate's advisory lock, so processes starting together
// migrate once.
func migrateUp(ctx context.Context, d dialect, rawURL string, db *sql.DB, c chain) error {
	sub, err := c.fs(d.name)
	if err != nil {
		return err
	}
	src, err := iofs.New(sub, ".")
	if err != nil {
		return err
	}
	var driver database.Driver
	switch d.name {
	case "postgres":
		own, err := sql.Open("pgx", rawURL)
		if err != nil {
			return err
		}
		// The driver owns the connection and closes it when done.
		if driver, err = migratepgx.WithInstance(own, &migratepgx.Config{}); err != nil {
			own.Close()
			return err
		}
	default:
		driver = &sqliteMigrations{db: db}
	}
	m, err := migrate.NewWithInstance("iofs", src, d.name, driver)
	if err != nil {
		return err
	}
	if d.name == "postgres" {
		defer m.Close()
	}
	stop := make(chan bool, 1)
	m.GracefulStop = stop
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			stop <- true
		case <-done:
		}
	}()
	if c.refuseOld {
		if err := refuseOld(driver); err != nil {
			return err
		}
	}
	up := m.Up
	if c.version > 0 {
		up = func() error { return m.Migrate(c.version) }
	}
	err = up()
	if dirty := (migrate.ErrDirty{}); errors.As(err, &dirty) {
		// A migration was cut short (the database went away, the process was killed). Each
		// runs in one transaction (migrations/embed.go), so it left nothing behind: mark the
		// one before it as the last applied, and apply it again.
		if err := undoDirty(driver, src, dirty.Version); err != nil {
			return unwrapDriverError(err)
		}
		err = up()
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return unwrapDriverError(err)
	}
	return nil
}

// refuseOld refuses a database whose schema is of a version before schemaVersion, under the
// migration lock: a pre-release version made it, in a layout this version does not read.
func refuseOld(driver database.Driver) error {
	if err := driver.Lock(); err != nil {
		return err
	}
	defer driver.Unlock()
	version, _, err := driver.Version()
	if err != nil || version == database.NilVersion || version >= schemaVersion {
		return err
	}
	return fmt.Errorf("%w: its schema is at version %d, before %d, in a layout this version does not read or upgrade: "+
		"use a new database (export what it holds with the version that made it, through its API or the samples view)",
		ErrPrerelease, version, schemaVersion)
}

// undoDirty marks the migration before version as the last applied, if version is still
// marked dirty once the migration lock is held: another process starting at the same time may
// have applied it again meanwhile.
func undoDirty(driver database.Driver, src source.Driver, version int) error {
	before := database.NilVersion
	if prev, err := src.Prev(uint(version)); err == nil {
		before = int(prev)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := driver.Lock(); err != nil {
		return err
	}
	defer driver.Unlock()
	current, dirty, err := driver.Version()
	if err != nil || !dirty || current != version {
		return err
	}
	return driver.SetVersion(before, false)
}

// unwrapDriverError keeps the error under golang-migrate's database.Error reachable by
// errors.Is, so that a database that went away is told from a migration that failed.
func unwrapDriverError(err error) error {
	var dbErr database.Error
	if errors.As(err, &dbErr) && dbErr.OrigErr != nil {
		return fmt.Errorf("%s: %w", err.Error(), dbErr.OrigErr)
	}
	return err
}

// sqliteMigrations is golang-migrate's database.Driver for the embedded store. It works on
// the store's own *sql.DB: golang-migrate's SQLite driver registers a second "sqlite"
// database/sql driver that clashes with the one GORM's pure-Go SQLite dialector registers.
// Its lock is in-process: across processes, Open holds lockSQLite's file lock meanwhile.
type sqliteMigrations struct {
	db *sql.DB
	mu sync.Mutex
}

// versionTable is where the schema version is kept: golang-migrate's table, on SQLite too.
const versionTable = "schema_migrations"

// sqliteLockWait is how long a process waits for another to finish preparing the database.
const sqliteLockWait = time.Minute

// lockSQLite takes the file lock beside a SQLite database (PATH.migrate-lock) under which a
// process prepares it — migrations, then the upgrade of old tables — so that processes
// starting together on a new file prepare it once: the others wait, then find it done. The
// kernel releases the lock of a process that dies. An in-memory database needs none.
func lockSQLite(rawURL string) (unlock func(), err error) {
	path := sqlitePath(rawURL)
	if path == "" || path == ":memory:" || strings.Contains(rawURL, "mode=memory") {
		return func() {}, nil
	}
	lockPath := path + ".migrate-lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	for deadline := time.Now().Add(sqliteLockWait); ; time.Sleep(20 * time.Millisecond) {
		ok, err := tryLockFile(f)
		switch {
		case err != nil:
			f.Close()
			return nil, fmt.Errorf("migration lock %s: %w", lockPath, err)
		case ok:
			return func() { unlockFile(f); f.Close() }, nil
		case time.Now().After(deadline):
			f.Close()
			return nil, fmt.Errorf("another process has held the migration lock %s for %s: is one stuck?", lockPath, sqliteLockWait)
		}
	}
}

func (m *sqliteMigrations) Open(string) (database.Driver, error) {
	return nil, errors.New("sqlite migrations: open through sqlstore.Open")
}

// Close leaves the database open: it belongs to the store.
func (m *sqliteMigrations) Close() error { return nil }

func (m *sqliteMigrations) Lock() error {
	if !m.mu.TryLock() {
		return database.ErrLocked
	}
	return nil
}

func (m *sqliteMigrations) Unlock() error {
	m.mu.Unlock()
	return nil
}

func (m *sqliteMigrations) Run(migration io.Reader) error {
	body, err := io.ReadAll(migration)
	if err != nil {
		return err
	}
	return m.inTx(func(tx *sql.Tx) error {
		_, err := tx.Exec(string(body))
		return err
	})
}

func (m *sqliteMigrations) SetVersion(version int, dirty bool) error {
	return m.inTx(func(tx *sql.Tx) error {
		if _, err := tx.Exec(`CREATE TABLE IF NOT EXISTS ` + versionTable +
			` (version INTEGER NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)`); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM ` + versionTable); err != nil {
			return err
		}
		if version >= 0 || (version == database.NilVersion && dirty) {
			_, err := tx.Exec(`INSERT INTO `+versionTable+` (version, dirty) VALUES (?, ?)`, version, dirty)
			return err
		}
		return nil
	})
}

func (m *sqliteMigrations) Version() (int, bool, error) {
	var exists int
	if err := m.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`,
		versionTable).Scan(&exists); err != nil {
		return 0, false, err
	}
	if exists == 0 {
		return database.NilVersion, false, nil
	}
	var version int
	var dirty bool
	err := m.db.QueryRow(`SELECT version, dirty FROM `+versionTable+` LIMIT 1`).Scan(&version, &dirty)
	if errors.Is(err, sql.ErrNoRows) {
		return database.NilVersion, false, nil
	}
	return version, dirty, err
}

func (m *sqliteMigrations) Drop() error {
	tables, err := queryColumn[string](context.Background(), m.db,
		`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		return err
	}
	return m.inTx(func(tx *sql.Tx) error {
		for _, t := range tables {
			if _, err := tx.Exec(fmt.Sprintf(`DROP TABLE IF EXISTS %q`, t)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (m *sqliteMigrations) inTx(f func(*sql.Tx) error) error {
	tx, err := m.db.Begin()
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// queryColumn runs a query of one column and returns its values.
func queryColumn[T any](ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
