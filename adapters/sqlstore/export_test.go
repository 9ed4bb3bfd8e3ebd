package sqlstore

import (
	"context"
	"time"
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
