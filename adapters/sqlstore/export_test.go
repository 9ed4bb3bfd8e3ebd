package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
)

// CountRows counts a table's rows, for tests that watch tables grow.
func (s *Store) CountRows(ctx context.Context, table string) (int64, error) {
	var n int64
	err := s.sqlDB.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n)
	return n, err
}

// Bytes is what the store's tables take: on PostgreSQL every table, index and TOAST table of
// the store's schema (a partition each); on SQLite the file's pages in use.
func (s *Store) Bytes(ctx context.Context) (int64, error) {
	var n int64
	if s.dialect.name == "sqlite" {
		err := s.sqlDB.QueryRowContext(ctx, `SELECT (SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size())`).Scan(&n)
		return n, err
	}
	err := s.sqlDB.QueryRowContext(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
		JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = current_schema() AND c.relkind = 'r'`).Scan(&n)
	return n, err
}

// Partitions lists the bounds of chunks' partitions, other than the default.
func (s *Store) Partitions(ctx context.Context) ([][2]time.Time, error) {
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	ps, err := listPartitions(ctx, tx)
	var out [][2]time.Time
	for _, p := range ps {
		out = append(out, [2]time.Time{p.from, p.to})
	}
	return out, err
}

// Vacuum stands in for autovacuum in tests that compress hours into seconds.
func (s *Store) Vacuum(ctx context.Context) error {
	if s.dialect.name != "postgres" {
		return nil
	}
	_, err := s.sqlDB.ExecContext(ctx, `VACUUM`)
	return err
}

// ChunkDataBytes is what the chunks' data takes in the database, compressed as stored.
func (s *Store) ChunkDataBytes(ctx context.Context) (int64, error) {
	var n int64
	q := `SELECT coalesce(sum(pg_column_size(data)), 0) FROM chunks`
	if s.dialect.name == "sqlite" {
		q = `SELECT coalesce(sum(length(data)), 0) FROM chunks`
	}
	err := s.sqlDB.QueryRowContext(ctx, q).Scan(&n)
	return n, err
}

// RollupsOf returns a device's buckets of the tier of step in [from, to), with its metrics'
// names.
func (s *Store) RollupsOf(ctx context.Context, step time.Duration, key string, from, to time.Time) ([]engine.Bucket, map[int32]string, error) {
	id, err := s.gpuID(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	for _, tier := range engine.Tiers {
		if tier.Step != step {
			continue
		}
		byDevice, err := s.readRollups(ctx, s.sqlDB, tier, []int32{id}, from.UnixMicro(), to.UnixMicro(), nil)
		bs := byDevice[id]
		names := map[int32]string{}
		for _, b := range bs {
			if names[b.Metric], err = s.metricName(ctx, b.Metric); err != nil {
				return nil, nil, err
			}
		}
		return bs, names, err
	}
	return nil, nil, fmt.Errorf("no tier of step %s", step)
}

// RollupRows counts the rows of a tier.
func (s *Store) RollupRows(ctx context.Context, step time.Duration) (int64, error) {
	var n int64
	err := s.sqlDB.QueryRowContext(ctx, s.dialect.rebind(`SELECT count(*) FROM rollups WHERE step = ?`), int(step/time.Second)).Scan(&n)
	return n, err
}

// ShrinkHeadsOver sets the size an empty chunks_heads is truncated over.
func (s *Store) ShrinkHeadsOver(n int64) { s.shrinkHeadsOver = n }

// TableBytes is what a table takes on disk, its partitions, TOAST tables and indexes
// included.
func (s *Store) TableBytes(ctx context.Context, table string) (int64, error) {
	var n int64
	err := s.sqlDB.QueryRowContext(ctx, `SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree($1::regclass)`, table).Scan(&n)
	return n, err
}

// ForgetRollups deletes every row of the tiers, as a store sealed before them has none.
func (s *Store) ForgetRollups(ctx context.Context) error {
	_, err := s.sqlDB.ExecContext(ctx, `DELETE FROM rollups`)
	return err
}

// RollupBytes is the bytes of the tiers' rows' data.
func (s *Store) RollupBytes(ctx context.Context) (int64, error) {
	var n int64
	err := s.sqlDB.QueryRowContext(ctx, `SELECT coalesce(sum(length(data)), 0) FROM rollups`).Scan(&n)
	return n, err
}

// CompactLock is the first key of the advisory lock compaction takes on a device.
const CompactLock = compactLock

// QueryRow runs a query of the test's own.
func (s *Store) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.sqlDB.QueryRowContext(ctx, query, args...)
}
