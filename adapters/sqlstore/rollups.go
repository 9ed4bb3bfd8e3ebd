package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
)

// The downsampled tiers, the I/O of them (the engine computes them: engine/rollup.go).
// Sealing a window writes, in the sealing transaction, the window's row of the finest tier
// and the row of each coarser tier holding it, computed again from the finer tier's rows of
// its span: a row is a function of the samples stored, replaced whole, never added to, so a
// batch sent twice or a second collector never counts a bucket twice.

// writeRollups writes the rows of every tier for a device's window just sealed, whose
// finest buckets are given.
func (s *Store) writeRollups(ctx context.Context, tx *sql.Tx, device int32, w engine.Window, buckets []engine.Bucket) error {
	floors, err := s.rollupFloors(ctx, tx)
	if err != nil {
		return fmt.Errorf("read where retention cut the tiers: %w", err)
	}
	for i, tier := range engine.Tiers {
		start := tier.SpanOf(w.Start)
		// Below the floor of the tier, or for a coarser one of the finer tier it is computed
		// from, the row would be computed from what retention left of its span: leave it.
		if start < floors[tier.Step] || i > 0 && start < floors[engine.Tiers[i-1].Step] {
			return nil
		}
		if i > 0 { // computed from the finer tier's rows of its span
			finer, err := s.readRollups(ctx, tx, engine.Tiers[i-1], device, start, start+tier.Span.Microseconds())
			if err != nil {
				return fmt.Errorf("read the %s rows: %w", engine.Tiers[i-1].Step, err)
			}
			buckets = engine.Coarsen(finer, tier.Step)
		}
		if err := s.putRollup(ctx, tx, tier, device, start, buckets); err != nil {
			return fmt.Errorf("write the %s row: %w", tier.Step, err)
		}
	}
	return nil
}

// putRollup replaces a tier's row of a device and span with buckets (deletes it when there
// are none: a window whose points all moved).
func (s *Store) putRollup(ctx context.Context, tx *sql.Tx, tier engine.Tier, device int32, start int64, buckets []engine.Bucket) error {
	step, at := int(tier.Step/time.Second), s.dialect.ts(time.UnixMicro(start))
	if len(buckets) == 0 {
		_, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM rollups WHERE step = ? AND gpu_id = ? AND start = ?`), step, device, at)
		return err
	}
	var samples int64
	for i := range buckets {
		samples += buckets[i].Count
	}
	_, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO rollups (step, gpu_id, start, samples, data) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (step, gpu_id, start) DO UPDATE SET samples = excluded.samples, data = excluded.data`),
		step, device, at, samples, engine.EncodeRollup(buckets))
	return err
}

// readRollups returns a device's buckets of a tier in [from, to), in order.
func (s *Store) readRollups(ctx context.Context, q querier, tier engine.Tier, device int32, from, to int64) ([]engine.Bucket, error) {
	rows, err := q.QueryContext(ctx, s.dialect.rebind(`SELECT data FROM rollups WHERE step = ? AND gpu_id = ? AND start > ? AND start < ? ORDER BY start`),
		int(tier.Step/time.Second), device, s.dialect.ts(time.UnixMicro(from-tier.Span.Microseconds())), s.dialect.ts(time.UnixMicro(to)))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []engine.Bucket
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		n := len(out)
		if out, err = engine.DecodeRollup(data, out); err != nil {
			return nil, err
		}
		// Keep [from, to): the first and last rows may reach beyond.
		kept := out[:n]
		for _, b := range out[n:] {
			if b.Start >= from && b.Start < to {
				kept = append(kept, b)
			}
		}
		out = kept
	}
	return out, rows.Err()
}

// querier is what reads take: the database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// rollupFloors returns where retention cut each tier, by step.
func (s *Store) rollupFloors(ctx context.Context, q querier) (map[time.Duration]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT step, start FROM rollup_floors`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	floors := map[time.Duration]int64{}
	for rows.Next() {
		var step int
		var start timestamp
		if err := rows.Scan(&step, &start); err != nil {
			return nil, err
		}
		floors[time.Duration(step)*time.Second] = start.UnixMicro()
	}
	return floors, rows.Err()
}

// pruneRollups deletes, in tx, each tier's rows of spans that end before its cutoff (zero:
// kept forever), and moves the tier's floor up to it.
func (s *Store) pruneRollups(ctx context.Context, tx *sql.Tx, cutoffs []time.Time) (rows int64, err error) {
	for i, tier := range engine.Tiers {
		if i >= len(cutoffs) || cutoffs[i].IsZero() {
			continue
		}
		// A span goes once all of it is older than the cutoff.
		before := tier.SpanOf(cutoffs[i].UnixMicro()) - tier.Span.Microseconds()
		res, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM rollups WHERE step = ? AND start <= ?`),
			int(tier.Step/time.Second), s.dialect.ts(time.UnixMicro(before)))
		if err != nil {
			return rows, err
		}
		n, _ := res.RowsAffected()
		rows += n
		floor := s.dialect.ts(time.UnixMicro(before + tier.Span.Microseconds()))
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO rollup_floors (step, start) VALUES (?, ?)
			ON CONFLICT (step) DO UPDATE SET start = excluded.start WHERE rollup_floors.start < excluded.start`),
			int(tier.Step/time.Second), floor); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// backfillBatch bounds the windows a pass of backfillRollups writes the rows of.
const backfillBatch = 64

// backfillRollups writes the tiers' rows of windows sealed without them — by a version
// before the tiers — a few per compaction pass, oldest first, so that their history outlives
// their samples too. Reads meanwhile answer those windows from the samples. It returns how
// many it wrote; once it finds none, the store stops looking until it is opened again.
func (s *Store) backfillRollups(ctx context.Context) (int, error) {
	if s.backfilled.Load() {
		return 0, nil
	}
	rows, err := s.sqlDB.QueryContext(ctx, s.dialect.rebind(`SELECT c.gpu_id, `+s.dialect.windowStart+` AS w FROM chunks c
		WHERE c.sealed AND NOT EXISTS (SELECT 1 FROM rollups r WHERE r.step = ? AND r.gpu_id = c.gpu_id AND r.start = `+s.dialect.windowStart+`)
		GROUP BY c.gpu_id, w ORDER BY w LIMIT ?`), int(engine.Tiers[0].Step/time.Second), backfillBatch)
	if err != nil {
		return 0, err
	}
	type todo struct {
		device int32
		w      engine.Window
	}
	var windows []todo
	for rows.Next() {
		var device int32
		var start timestamp
		if err := rows.Scan(&device, &start); err != nil {
			rows.Close()
			return 0, err
		}
		windows = append(windows, todo{device, engine.WindowOf(start.UnixMicro())})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(windows) == 0 {
		s.backfilled.Store(true)
		return 0, nil
	}
	done := 0
	for _, t := range windows {
		read, _, err := s.inTx(ctx, t.device, func(tx *sql.Tx) (int, int, error) {
			ts := func(us int64) any { return s.dialect.ts(time.UnixMicro(us)) }
			// Only a window all sealed: one with head chunks gets its rows when sealed again.
			old, err := s.readChunks(ctx, tx, `SELECT id, data FROM chunks WHERE gpu_id = ? AND min_ts < ? AND max_ts >= ?
				AND min_ts > ?`, t.device, ts(t.w.End), ts(t.w.Start), ts(t.w.Start-engine.MaxSpan.Microseconds()))
			if err != nil || len(old.ids) == 0 {
				return 0, 0, err
			}
			var heads int
			if err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT count(*) FROM chunks WHERE gpu_id = ? AND `+s.dialect.unsealed+`
				AND min_ts < ? AND max_ts >= ?`), t.device, ts(t.w.End), ts(t.w.Start)).Scan(&heads); err != nil || heads > 0 {
				return 0, 0, err
			}
			in := old.pts[:0]
			for _, p := range old.pts {
				if t.w.Holds(p.TS) {
					in = append(in, p)
				}
			}
			return len(old.ids), 0, s.writeRollups(ctx, tx, t.device, t.w, engine.RollupBlocks(in))
		})
		if err != nil {
			return done, err
		}
		if read > 0 {
			done++
		}
	}
	return done, nil
}
