package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
)

// The downsampled tiers, the I/O of them (the engine computes them: engine/rollup.go). A
// row holds a device's buckets of a tier over a span of it — a day of 5-minute buckets, a
// week of hourly ones — long enough for PostgreSQL to compress it (rows under 2 kB are
// stored as they are), short enough that rewriting it stays cheap. Sealing a window
// replaces, in the sealing transaction, the window's buckets in its day's 5-minute row,
// and marks the row not coarsened; once the day is over, a compaction pass writes the day
// into each coarser row, computed again from its 5-minute buckets, and marks it coarsened
// (coarsenDays). So a week's hourly row is written about once a day, not at each of its 84
// windows, each write leaving a dead copy behind until vacuum; reads take the days not
// coarsened yet from the 5-minute rows. Each part of a row is a function of the samples
// stored, replaced whole, never added to, so a batch sent twice or a second collector never
// counts a bucket twice. A 5-minute row also says which of its day's windows it holds
// (covered, a bit a window), which reads and the backfill of older windows go by.

// writeRollups writes a device's windows just sealed — of one day — whose finest buckets
// are given, into the day's row of the finest tier.
func (s *Store) writeRollups(ctx context.Context, tx *sql.Tx, device int32, ws []engine.Window, buckets []engine.Bucket) error {
	floors, err := s.rollupFloors(ctx, tx)
	if err != nil {
		return fmt.Errorf("read where retention cut the tiers: %w", err)
	}
	fine := engine.Tiers[0]
	day := fine.SpanOf(ws[0].Start)
	if day < floors[fine.Step] {
		return nil // a day retention has cut: what is left of it stays as it is
	}
	var covered int64
	for _, w := range ws {
		covered |= windowBit(day, w.Start)
	}
	if _, err := s.replaceInRollup(ctx, tx, fine, device, day, ws, buckets, covered); err != nil {
		return fmt.Errorf("write the %s row: %w", fine.Step, err)
	}
	return nil
}

// coarsenBatch bounds the days a pass of coarsenDays writes.
const coarsenBatch = 256

// coarsenDays writes into the coarser tiers' rows the days whose finest row changed since
// they were last written there, of those before the day of newest (all when force) whose
// device has no head chunk before the day's end (headsFrom: the earliest point of a
// device's head chunks) — a day is written once all its windows are sealed, not as each
// is — oldest first, at most coarsenBatch, and returns how many it wrote and how many it
// left to another process sealing their device.
func (s *Store) coarsenDays(ctx context.Context, headsFrom map[int32]int64, newest int64, force bool) (done, busy int, err error) {
	if !s.backfilled.Load() {
		// Not before every sealed window is in its 5-minute row: reads take a day the coarser
		// tiers hold for one whose blocks are all there (summaries.go).
		return 0, 0, nil
	}
	fine := engine.Tiers[0]
	query, args := `SELECT gpu_id, start FROM rollups WHERE coarsened = false AND step = ?`, []any{int(fine.Step / time.Second)}
	if !force && newest != 0 { // else nothing is coming in: every day is over
		query, args = query+` AND start < ?`, append(args, s.dialect.ts(time.UnixMicro(fine.SpanOf(newest))))
	}
	rows, err := s.sqlDB.QueryContext(ctx, s.dialect.rebind(query+` ORDER BY start LIMIT ?`), append(args, coarsenBatch)...)
	if err != nil {
		return 0, 0, err
	}
	type day struct {
		device int32
		start  int64
	}
	var days []day
	for rows.Next() {
		var d day
		var start timestamp
		if err := rows.Scan(&d.device, &start); err != nil {
			rows.Close()
			return 0, 0, err
		}
		d.start = start.UnixMicro()
		days = append(days, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	for _, d := range days {
		if from, ok := headsFrom[d.device]; ok && from < d.start+fine.Span.Microseconds() {
			continue
		}
		read, _, err := s.inTx(ctx, d.device, func(tx *sql.Tx) (int, int, error) { return s.coarsenDay(ctx, tx, d.device, d.start) })
		switch {
		case errors.Is(err, errBusy):
			busy++ // the device is being sealed: a later pass comes back to it
		case err != nil:
			return done, busy, err
		}
		done += read
	}
	return done, busy, nil
}

// coarsenDay writes a device's day of the finest tier into the coarser tiers' rows, if it
// is still to be, and marks it done.
func (s *Store) coarsenDay(ctx context.Context, tx *sql.Tx, device int32, day int64) (int, int, error) {
	fine := engine.Tiers[0]
	step, at := int(fine.Step/time.Second), s.dialect.ts(time.UnixMicro(day))
	var data []byte
	err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT data FROM rollups WHERE step = ? AND gpu_id = ? AND start = ? AND coarsened = false`),
		step, device, at).Scan(&data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, 0, nil // done by another process since the pass began
	case err != nil:
		return 0, 0, err
	}
	buckets, err := engine.DecodeRollup(data, nil)
	if err != nil {
		return 0, 0, err
	}
	floors, err := s.rollupFloors(ctx, tx)
	if err != nil {
		return 0, 0, fmt.Errorf("read where retention cut the tiers: %w", err)
	}
	for _, tier := range engine.Tiers[1:] {
		if start := tier.SpanOf(day); start >= floors[tier.Step] {
			whole := []engine.Window{{Start: day, End: day + fine.Span.Microseconds()}}
			if _, err := s.replaceInRollup(ctx, tx, tier, device, start, whole, engine.Coarsen(buckets, tier.Step), 0); err != nil {
				return 0, 0, fmt.Errorf("write the %s row: %w", tier.Step, err)
			}
		}
	}
	_, err = tx.ExecContext(ctx, s.dialect.rebind(`UPDATE rollups SET coarsened = ? WHERE step = ? AND gpu_id = ? AND start = ?`), true, step, device, at)
	return 1, 0, err
}

// windowBit is a window's bit in its day's covered mask.
func windowBit(day, window int64) int64 {
	return 1 << ((window - day) / engine.BlockSpan.Microseconds())
}

// replaceInRollup replaces the buckets of spans in a tier's row of a device and span with
// buckets, sets the bits of covered in its mask, and returns every bucket of the row.
func (s *Store) replaceInRollup(ctx context.Context, tx *sql.Tx, tier engine.Tier, device int32, start int64, spans []engine.Window,
	buckets []engine.Bucket, covered int64) ([]engine.Bucket, error) {
	step, at := int(tier.Step/time.Second), s.dialect.ts(time.UnixMicro(start))
	var (
		data []byte
		mask int64
		row  []engine.Bucket
	)
	err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT data, covered FROM rollups WHERE step = ? AND gpu_id = ? AND start = ?`),
		step, device, at).Scan(&data, &mask)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, err
	default:
		if row, err = engine.DecodeRollup(data, nil); err != nil {
			return nil, err
		}
	}
	row = slices.DeleteFunc(row, func(b engine.Bucket) bool {
		return slices.ContainsFunc(spans, func(w engine.Window) bool { return w.Holds(b.Start) })
	})
	row = append(row, buckets...)
	slices.SortStableFunc(row, func(a, b engine.Bucket) int { return cmp.Compare(a.Start, b.Start) })
	var samples int64
	for i := range row {
		samples += row[i].Count
	}
	// A finest row is to be written into the coarser ones again; those have nothing to.
	coarsened := tier.Step != engine.Tiers[0].Step
	_, err = tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO rollups (step, gpu_id, start, samples, covered, coarsened, data) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (step, gpu_id, start) DO UPDATE SET samples = excluded.samples, covered = excluded.covered, coarsened = excluded.coarsened,
			data = excluded.data`),
		step, device, at, samples, mask|covered, coarsened, engine.EncodeRollup(row))
	return row, err
}

// readRollups returns devices' buckets of a tier in [from, to), of the metrics keep holds
// (all when nil), by device, each in order.
func (s *Store) readRollups(ctx context.Context, q querier, tier engine.Tier, devices []int32, from, to int64, keep map[int32]bool) (map[int32][]engine.Bucket, error) {
	args := append(append([]any{int(tier.Step / time.Second)}, toAny(devices)...),
		s.dialect.ts(time.UnixMicro(from-tier.Span.Microseconds())), s.dialect.ts(time.UnixMicro(to)))
	return s.scanRollups(ctx, q, `SELECT CAST(gpu_id AS BIGINT), data FROM rollups WHERE step = ? AND gpu_id IN (`+placeholders(len(devices))+`)
		AND start > ? AND start < ? ORDER BY gpu_id, start`, args, from, to, keep)
}

// readRollupDays is readRollups of the rows that start at one of starts.
func (s *Store) readRollupDays(ctx context.Context, tier engine.Tier, devices []int32, starts map[int64]bool, from, to int64, keep map[int32]bool) (map[int32][]engine.Bucket, error) {
	if len(starts) == 0 {
		return map[int32][]engine.Bucket{}, nil
	}
	args := append([]any{int(tier.Step / time.Second)}, toAny(devices)...)
	for start := range starts {
		args = append(args, s.dialect.ts(time.UnixMicro(start)))
	}
	return s.scanRollups(ctx, s.sqlDB, `SELECT CAST(gpu_id AS BIGINT), data FROM rollups WHERE step = ? AND gpu_id IN (`+placeholders(len(devices))+`)
		AND start IN (`+placeholders(len(starts))+`) ORDER BY gpu_id, start`, args, from, to, keep)
}

// scanRollups decodes the rows (device, data) that query selects, keeping the buckets in
// [from, to) of the metrics keep holds (all when nil).
func (s *Store) scanRollups(ctx context.Context, q querier, query string, args []any, from, to int64, keep map[int32]bool) (map[int32][]engine.Bucket, error) {
	rows, err := q.QueryContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int32][]engine.Bucket{}
	for rows.Next() {
		var id int64
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			return nil, err
		}
		// The first and last rows may reach beyond [from, to).
		if out[int32(id)], err = engine.DecodeRollupIn(data, from, to, keep, out[int32(id)]); err != nil {
			return nil, err
		}
	}
	return out, rows.Err()
}

// querier is what reads take: the database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
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

// backfillRollups writes the tiers' buckets of windows sealed without them — by a version
// before the tiers — a few per compaction pass, oldest first, so that their history outlives
// their samples too. Reads meanwhile answer those windows from the samples. It returns how
// many it wrote; once it finds none, the store stops looking until it is opened again.
func (s *Store) backfillRollups(ctx context.Context) (int, error) {
	if s.backfilled.Load() {
		return 0, nil
	}
	// Not below the finest tier's floor: samples kept longer than it (--retention=0) get no
	// rows there, and would be looked at again every pass.
	floors, err := s.rollupFloors(ctx, s.sqlDB)
	if err != nil {
		return 0, err
	}
	rows, err := s.sqlDB.QueryContext(ctx, s.dialect.rebind(`SELECT c.gpu_id, `+s.dialect.windowStart+` AS w FROM chunks c
		WHERE c.sealed AND c.min_ts >= ? AND NOT EXISTS (SELECT 1 FROM rollups r WHERE r.step = ? AND r.gpu_id = c.gpu_id AND r.start = `+s.dialect.dayStart+`
			AND (r.covered >> `+s.dialect.windowOfDay+`) & 1 = 1)
		GROUP BY c.gpu_id, w ORDER BY w LIMIT ?`), s.dialect.ts(time.UnixMicro(floors[engine.Tiers[0].Step])), int(engine.Tiers[0].Step/time.Second), backfillBatch)
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
			return len(old.ids), 0, s.writeRollups(ctx, tx, t.device, []engine.Window{t.w}, engine.RollupBlocks(in))
		})
		if errors.Is(err, errBusy) {
			continue // another process compacts the device: a later pass comes back to it
		}
		if err != nil {
			return done, err
		}
		if read > 0 {
			done++
		}
	}
	if len(windows) < backfillBatch && done == len(windows) {
		s.backfilled.Store(true) // these were the last
	}
	return done, nil
}
