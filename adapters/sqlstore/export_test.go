package sqlstore

import "context"

// CountRows counts a table's rows, for tests that watch tables grow.
func (s *Store) CountRows(ctx context.Context, table string) (int64, error) {
	var n int64
	err := s.sqlDB.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n)
	return n, err
}
