// Package sqlstore stores telemetry in PostgreSQL or in an embedded SQLite file (pure Go, no
// cgo), behind the ports.BatchWriter, Inventory, SampleReader and Summarizer contracts. The
// schema is owned by the migrations package and applied when a store opens.
//
// This package is the I/O: transactions, locks, COPY and the queries. How samples are laid
// out — head chunks and blocks, cutting, merging, cursors, what compaction does — is the
// storage engine's (package engine), which holds no SQL. Samples reference devices and
// metric names by compact surrogate keys that the store resolves and caches.
//
// Which database API, where:
//   - GORM for the small relational tables (gpus, metrics): models, upserts
//     and lookups written once for both dialects;
//   - database/sql for statements on chunks and batches that both dialects run as they are
//     (compaction, retention, SQLite's writes), with ? placeholders rebound per dialect;
//   - pgx directly where PostgreSQL is on the hot path: COPY of chunks and batches, and
//     reading chunks into reused buffers (scan.go) — what GORM and database/sql would cost
//     an allocation a row for.
package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jpillora/backoff"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

var _ ports.BatchWriter = (*Store)(nil)

// Options configure Open. Zero fields take the defaults given.
type Options struct {
	// MaxConns caps open connections. Default 10 on PostgreSQL; SQLite always uses one
	// writer and a few readers.
	MaxConns int

	// ConnectTimeout bounds how long an unreachable database is retried; 0 retries until
	// ctx ends. Migrating and upgrading the schema afterwards are bound by ctx only: they
	// may take long on a large database and must not be cut short by a connect deadline.
	ConnectTimeout time.Duration

	// ReadOnly opens a database to read only, a streaming replica say: it is not migrated,
	// and Open waits until its schema is this version's (a replica catches up with the
	// primary's migrations). Writes fail.
	ReadOnly bool

	// Logger receives connection retries and, at debug level, GORM's slow queries.
	// Nil discards.
	Logger *slog.Logger
}

// Store is an open database.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect dialect
	log     *slog.Logger

	mu      sync.Mutex          // guards the caches
	gpus    map[string]knownGPU // by device key
	metrics map[string]int32
	names   map[int32]string // metrics reversed
	pairs   map[metricPair]bool
	density map[int32]float64 // points per chunk scans of a GPU saw, of any under anyGPU

	maintMu sync.Mutex
	maint   MaintenanceStats

	shrinkHeadsOver    int64       // compact.go: shrinkHeadsOver, but for tests
	shrinkHeadsPending atomic.Bool // compact.go: the last shrink of chunks_heads found it busy
	backfilled         atomic.Bool // rollups.go: no sealed window lacks its tiers' rows
	past               pastPartitions
}

// MaintenanceStats counts what this process's Compactor and Pruner did.
type MaintenanceStats struct {
	CompactionPasses, CompactionFailures int64
	WindowsSealed, ChunksRewritten       int64 // chunks read by merges and seals
	BatchesFolded                        int64
	RetentionPasses, RetentionFailures   int64
	ChunksPruned, SamplesPruned          int64
	RollupsPruned                        int64
	WorkloadsPruned                      int64
}

// Maintenance returns the counts so far.
func (s *Store) Maintenance() MaintenanceStats {
	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	return s.maint
}

func (s *Store) countMaintenance(f func(*MaintenanceStats)) {
	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	f(&s.maint)
}

// dialect names the database kind and holds what differs between the two.
type dialect struct {
	name string
	// ts converts a time to the representation of timestamp columns.
	ts func(time.Time) any
	// rebind turns ? placeholders into the dialect's, for queries that bypass GORM.
	rebind func(string) string
	// unsealed selects unsealed chunks (on PostgreSQL, chunks_heads).
	unsealed string
	// firstByte is the first byte of a chunk's data, as an SQL expression.
	firstByte string
	// windowStart is the start of the window of a chunk c's first sample (engine.WindowOf:
	// engine.BlockSpan, two hours, from the Unix epoch), dayStart of its day (the finest
	// tier's span), windowOfDay the window's index in the day.
	windowStart, dayStart, windowOfDay string
}

var (
	postgresDialect = dialect{name: "postgres", ts: func(t time.Time) any { return t.UTC() }, rebind: dollarPlaceholders,
		unsealed: "NOT sealed", firstByte: "get_byte(data, 0)", windowStart: "date_bin('2 hours', c.min_ts, timestamptz 'epoch')",
		dayStart: "date_bin('1 day', c.min_ts, timestamptz 'epoch')", windowOfDay: "(extract(hour FROM c.min_ts AT TIME ZONE 'UTC')::integer / 2)"}
	sqliteDialect = dialect{name: "sqlite", ts: func(t time.Time) any { return t.UnixMicro() }, rebind: func(s string) string { return s },
		unsealed: "sealed = 0", firstByte: "unicode(substr(data, 1, 1))", windowStart: "(c.min_ts - (c.min_ts % 7200000000))",
		dayStart: "(c.min_ts - (c.min_ts % 86400000000))", windowOfDay: "((c.min_ts % 86400000000) / 7200000000)"}
)

// truth is a boolean column as a condition: PostgreSQL's boolean, or SQLite's integer.
func (d dialect) truth(column string) string {
	if d.name == "postgres" {
		return column
	}
	return column + " <> 0"
}

// anyTrue aggregates a boolean column: whether any row's is true, in the column's type.
func (d dialect) anyTrue(column string) string {
	if d.name == "postgres" {
		return "bool_or(" + column + ")"
	}
	return "max(" + column + ")"
}

// dollarPlaceholders numbers ? placeholders $1, $2, … (our queries hold no literal ?).
func dollarPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Open connects to the database named by rawURL — postgres://… (or postgresql://…) or
// sqlite:PATH — retrying with backoff until ctx ends or opts.ConnectTimeout passes, and
// applies pending migrations.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, dialector, err := dialectorFor(rawURL)
	if err != nil {
		return nil, err
	}
	if d.name == "sqlite" {
		// Held from the first connection (which may switch a new file to WAL) until the
		// database is prepared.
		unlock, err := lockSQLite(rawURL)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", Redact(rawURL), err)
		}
		defer unlock()
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 gormLogger{log: log},
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
		DisableAutomaticPing:   true,
	})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", Redact(rawURL), err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", Redact(rawURL), err)
	}
	s := &Store{db: db, sqlDB: sqlDB, dialect: d, log: log, gpus: map[string]knownGPU{},
		metrics: map[string]int32{}, names: map[int32]string{}, pairs: map[metricPair]bool{}, density: map[int32]float64{}}
	if d.name == "sqlite" {
		// One connection: SQLite has a single writer, and database/sql would otherwise open
		// connections that wait on each other's locks.
		sqlDB.SetMaxOpenConns(1)
	} else {
		conns := cmp.Or(opts.MaxConns, 10)
		sqlDB.SetMaxOpenConns(conns)
		sqlDB.SetMaxIdleConns(conns)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	// Migrating starts again when the database goes away meanwhile: each migration is a
	// transaction, so nothing is left half done.
	for {
		connectCtx, cancel := ctx, context.CancelFunc(func() {})
		if opts.ConnectTimeout > 0 {
			connectCtx, cancel = context.WithTimeout(ctx, opts.ConnectTimeout)
		}
		err = s.waitReachable(connectCtx, rawURL, !opts.ReadOnly && d.name == "postgres")
		cancel()
		if err != nil {
			sqlDB.Close()
			return nil, err
		}
		if opts.ReadOnly {
			err = s.waitForSchema(ctx, rawURL)
		} else if err = migrateUp(ctx, d, rawURL, sqlDB, schema); err != nil {
			err = fmt.Errorf("migrate database %s: %w", Redact(rawURL), err)
		}
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil || !errors.Is(classify(err), telemetry.ErrUnavailable) {
			sqlDB.Close()
			return nil, err
		}
		log.WarnContext(ctx, "database lost while preparing it, starting again", "err", err)
	}
}

// waitForSchema waits, backing off as waitReachable does, until the database's schema is
// this version's: a replica has it once it has replayed the primary's migrations.
func (s *Store) waitForSchema(ctx context.Context, rawURL string) error {
	want, err := schema.latest(s.dialect.name)
	if err != nil {
		return err
	}
	retry := reconnect()
	delay := retry.Duration()
	for {
		var version uint
		var dirty bool
		err := s.sqlDB.QueryRowContext(ctx, `SELECT version, dirty FROM `+versionTable).Scan(&version, &dirty)
		switch {
		case err == nil && version == want && !dirty:
			return nil
		case err == nil && version > want:
			return fmt.Errorf("database %s: its schema is at version %d, newer than this build's (%d)", Redact(rawURL), version, want)
		}
		// Otherwise (no table yet, an older version, the database away) a replica may yet
		// catch up.
		s.log.WarnContext(ctx, "database schema not this version's yet (a replica behind?), waiting", "url", Redact(rawURL),
			"version", version, "want", want, "retry_in", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("database %s: schema at version %d, not %d: %w", Redact(rawURL), version, want, ctx.Err())
		}
		delay = retry.Duration()
	}
}

// Dialect is "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.dialect.name }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return classify(s.sqlDB.PingContext(ctx)) }

// Close closes the database.
func (s *Store) Close() error { return s.sqlDB.Close() }

// waitReachable pings until the database answers, backing off from 250ms to 5s and logging
// each failure, until ctx ends.
func (s *Store) waitReachable(ctx context.Context, rawURL string, create bool) error {
	retry := reconnect()
	delay := retry.Duration()
	for attempt := 1; ; attempt++ {
		err := s.sqlDB.PingContext(ctx)
		if err == nil {
			return nil
		}
		if noDatabase(err) && create {
			create = false // once
			if err := createDatabase(ctx, rawURL); err != nil {
				return fmt.Errorf("database %s: %w", Redact(rawURL), err)
			}
			s.log.InfoContext(ctx, "database created", "url", Redact(rawURL))
			continue
		}
		if misconfigured(err) {
			return fmt.Errorf("database %s: %w", Redact(rawURL), err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("database %s unreachable: %w", Redact(rawURL), err)
		}
		s.log.WarnContext(ctx, "database unreachable, retrying", "url", Redact(rawURL),
			"attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("database %s unreachable: %w", Redact(rawURL), err)
		}
		delay = retry.Duration()
	}
}

// reconnect is the backoff of waiting for the database: a quarter second, doubling up to 5.
func reconnect() *backoff.Backoff {
	return &backoff.Backoff{Min: 250 * time.Millisecond, Max: 5 * time.Second}
}

// createDatabase creates the database rawURL names, connecting to the server's postgres
// database as the same role: a fresh PostgreSQL has none but that one. When the role may
// not, the error says how to create it.
func createDatabase(ctx context.Context, rawURL string) error {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return err
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	}
	var pgErr *pgconn.PgError
	switch {
	case err == nil, errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505"): // made meanwhile by another process
		return nil
	default:
		return fmt.Errorf("database %q does not exist, and could not be created (%w): create it with createdb -h %s -p %d -U %s %s",
			name, err, cfg.Host, cfg.Port, cfg.User, name)
	}
}

func dialectorFor(rawURL string) (dialect, gorm.Dialector, error) {
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		return postgresDialect, postgres.Open(rawURL), nil
	case strings.HasPrefix(rawURL, "sqlite:"):
		path := sqlitePath(rawURL)
		if path == "" {
			return dialect{}, nil, errors.New("database URL sqlite: needs a file path, e.g. sqlite:telemetry.db")
		}
		if err := checkSQLitePath(path); err != nil {
			return dialect{}, nil, fmt.Errorf("database %s: %w", rawURL, err)
		}
		// WAL lets the API read while the collector writes; immediate transactions take the
		// write lock up front, so that busy_timeout applies instead of failing upgrades.
		// Incremental auto-vacuum lets retention give freed pages back to the file system
		// (it takes effect in a file made with it; older files keep their size).
		dsn := "file:" + path + "?_pragma=auto_vacuum(INCREMENTAL)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
			"&_pragma=synchronous(NORMAL)&_txlock=immediate"
		return sqliteDialect, sqlite.Open(dsn), nil
	}
	return dialect{}, nil, fmt.Errorf("database URL %q: want postgres://… or sqlite:PATH", Redact(rawURL))
}

// checkSQLitePath says why a database file cannot be opened for writing, which SQLite
// itself reports as "out of memory (14)".
func checkSQLitePath(path string) error {
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil
	}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return fmt.Errorf("%s is a directory, not a database file", path)
	}
	dir := filepath.Dir(path)
	if info, err := os.Stat(dir); err != nil {
		return fmt.Errorf("directory %s: %w", dir, errors.Unwrap(err))
	} else if !info.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open %s for writing: %w", path, errors.Unwrap(err))
	}
	return f.Close()
}

func sqlitePath(rawURL string) string {
	return strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "//")
}

// Redact hides the password in a database URL, for logs and errors.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// gormLogger forwards GORM's messages to slog: errors are left to the caller, who returns
// them; slow queries and traces go out at debug level.
type gormLogger struct{ log *slog.Logger }

func (l gormLogger) LogMode(logger.LogLevel) logger.Interface { return l }
func (l gormLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.DebugContext(ctx, "gorm: "+fmt.Sprintf(msg, args...))
}
func (l gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, "gorm: "+fmt.Sprintf(msg, args...))
}
func (l gormLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.DebugContext(ctx, "gorm: "+fmt.Sprintf(msg, args...))
}
func (l gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if elapsed := time.Since(begin); elapsed > time.Second {
		sql, rows := fc()
		l.log.WarnContext(ctx, "slow query", "elapsed", elapsed, "rows", rows, "sql", truncate(sql, 200))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
