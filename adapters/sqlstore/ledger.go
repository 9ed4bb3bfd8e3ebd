package sqlstore

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
)

// The batches table is the ledger of batches written: a row a batch, so that one sent again
// is recognised by its ID at once, and so that the stats are a sum over it. Once a window
// may be sealed (engine.FoldBefore), its batches' rows are folded into one, whose ID names
// the window: the ledger keeps a few hours of batches, not the whole retention (at 10
// batches a second, 13 million rows over 15 days). A batch sent again after that is
// recognised by its samples instead, which are stored once all the same.
const (
	// foldPrefix starts the ID of a window's row: batch IDs are hexadecimal.
	foldPrefix = "window "
	// foldLimit bounds the rows one fold reads.
	foldLimit = 10_000
	// foldLock is the PostgreSQL advisory lock a fold holds.
	foldLock = 7_315_004
)

// foldBatches folds the rows of batches written before engine.FoldBefore, up to foldLimit
// of them, into their windows' rows, returning how many it folded. Batches of no samples
// have no window and stay until retention deletes them.
func (s *Store) foldBatches(ctx context.Context, force bool) (int, error) {
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if s.dialect.name == "postgres" {
		var mine bool
		if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1)`, foldLock).Scan(&mine); err != nil || !mine {
			return 0, err
		}
	}
	var newest timestamp
	if err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT max(max_ts) FROM batches WHERE id NOT LIKE ?`), foldPrefix+"%").Scan(&newest); err != nil {
		return 0, fmt.Errorf("find the newest batch: %w", err)
	}
	if newest.IsZero() {
		return 0, nil
	}
	query, args := `SELECT id, samples, min_ts, max_ts, stored_at FROM batches WHERE max_ts IS NOT NULL AND id NOT LIKE ?`, []any{foldPrefix + "%"}
	if before := engine.FoldBefore(newest.UnixMicro(), force); before != math.MaxInt64 {
		query, args = query+` AND max_ts < ?`, append(args, s.dialect.ts(time.UnixMicro(before)))
	}
	rows, err := tx.QueryContext(ctx, s.dialect.rebind(query+` LIMIT ?`), append(args, foldLimit)...)
	if err != nil {
		return 0, fmt.Errorf("read batches to fold: %w", err)
	}
	var ids []any
	windows := map[int64]*batchRow{} // by window start
	// When a window's batches were last stored: a fold is no new write, and the workload
	// recorder finds samples stored late by this time (workloads.go).
	storedAt := map[int64]time.Time{}
	for rows.Next() {
		var id string
		var r batchRow
		var lo, hi, at timestamp
		if err := rows.Scan(&id, &r.Samples, &lo, &hi, &at); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
		r.MinTS, r.MaxTS = lo.UnixMicro(), hi.UnixMicro()
		start := engine.WindowOf(r.MaxTS).Start
		if at.After(storedAt[start]) {
			storedAt[start] = at.Time
		}
		if w := windows[start]; w != nil {
			w.Samples += r.Samples
			w.MinTS, w.MaxTS = min(w.MinTS, r.MinTS), max(w.MaxTS, r.MaxTS)
		} else {
			windows[start] = &r
		}
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if err := rows.Err(); err != nil || len(ids) == 0 {
		return 0, err
	}
	for part := range slices.Chunk(ids, 500) { // SQLite binds 32,766 parameters at most
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM batches WHERE id IN (`+placeholders(len(part))+`)`), part...); err != nil {
			return 0, fmt.Errorf("fold batches: %w", err)
		}
	}
	least, greatest := "least", "greatest"
	if s.dialect.name == "sqlite" {
		least, greatest = "min", "max"
	}
	for start, w := range windows {
		lo, hi := s.dialect.ts(time.UnixMicro(w.MinTS)), s.dialect.ts(time.UnixMicro(w.MaxTS)) // spans even of samples all stored before
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO batches (id, samples, stored_at, min_ts, max_ts) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET samples = batches.samples + excluded.samples,
				min_ts = `+least+`(batches.min_ts, excluded.min_ts), max_ts = `+greatest+`(batches.max_ts, excluded.max_ts),
				stored_at = `+greatest+`(batches.stored_at, excluded.stored_at)`),
			foldPrefix+time.UnixMicro(start).UTC().Format(time.RFC3339), w.Samples, s.dialect.ts(storedAt[start]), lo, hi); err != nil {
			return 0, fmt.Errorf("fold batches into their window's row: %w", err)
		}
	}
	return len(ids), tx.Commit()
}
