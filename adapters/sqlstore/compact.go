package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Compaction, the I/O of it: engine.Plan decides what becomes of a device's head chunks,
// this file reads them, has the engine re-cut them and writes the result in one
// transaction, so that every statement sees each sample exactly once; a scan that takes
// several statements resumes at a time, not at a chunk (scan.go).
const (
	// compactMaxChunks bounds the head chunks one transaction merges.
	compactMaxChunks = 1024
	// compactLock is the first key of PostgreSQL's advisory locks, whose second is a device
	// id: one process at a time compacts a device.
	compactLock = 0x7465_6c65 // "tele"
)

// CompactStats tells what a pass of the compactor did.
type CompactStats struct {
	GPUs          int  // devices whose chunks were merged or sealed
	Sealed        int  // windows sealed into blocks
	ChunksRead    int  // chunks merged or sealed
	ChunksWritten int  // chunks written in their place
	Folded        int  // rows of batches folded into their windows' (ledger.go)
	Backfilled    int  // windows sealed before the tiers whose rows were written (rollups.go)
	Coarsened     int  // devices' days written into the coarser tiers (rollups.go)
	More          bool // a device, or the ledger, has more work than one pass does
	Busy          int  // devices another process was compacting, left to it
}

func (st *CompactStats) add(read, written, sealed int) {
	if read == 0 {
		return
	}
	st.GPUs++
	st.ChunksRead += read
	st.ChunksWritten += written
	st.Sealed += sealed
	st.More = st.More || sealed > 0 || read == compactMaxChunks
}

// Compact makes one pass over the devices with head chunks, doing for each what engine.Plan
// says, in a transaction of its own. Several processes may compact at once: on PostgreSQL
// an advisory lock gives each device to one of them, the others skip it; SQLite runs one
// transaction at a time anyway. A database that cannot be reached ends the pass with an
// error; a device that cannot be compacted (a corrupt chunk) is logged and skipped.
func (s *Store) Compact(ctx context.Context) (CompactStats, error) { return s.compact(ctx, false) }

// Seal compacts until every head chunk is in a block, windows still open included, every
// batch's row is folded into its window's and every day is in the coarser tiers: what a
// benchmark measuring the store's size, or a test of blocks, wants. Points arriving later
// reopen the blocks of their windows.
func (s *Store) Seal(ctx context.Context) (CompactStats, error) {
	var total CompactStats
	for {
		st, err := s.compact(ctx, true)
		total.GPUs, total.Sealed = total.GPUs+st.GPUs, total.Sealed+st.Sealed
		total.ChunksRead, total.ChunksWritten = total.ChunksRead+st.ChunksRead, total.ChunksWritten+st.ChunksWritten
		total.Folded, total.Backfilled = total.Folded+st.Folded, total.Backfilled+st.Backfilled
		total.Coarsened += st.Coarsened
		if err != nil || st.GPUs == 0 && st.Busy == 0 && st.Folded < foldLimit && st.Backfilled < backfillBatch &&
			st.Coarsened < coarsenBatch {
			return total, err
		}
		if st.GPUs == 0 {
			// Only devices another process holds (or whose lock a connection cut short still
			// holds until its server process notices): wait for them rather than spin.
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

func (s *Store) compact(ctx context.Context, force bool) (CompactStats, error) {
	var st CompactStats
	heads, newest, err := s.heads(ctx)
	if err != nil {
		return st, classify(fmt.Errorf("find chunks to compact: %w", err))
	}
	// Processes that compact at once start at different devices rather than queueing on the
	// same locks.
	rand.Shuffle(len(heads), func(i, j int) { heads[i], heads[j] = heads[j], heads[i] })
	for _, h := range heads {
		var read, written, sealed int
		action, w := engine.Plan(h.Head, newest, force)
		switch action {
		case engine.Wait:
			continue
		case engine.MergeHead:
			read, written, err = s.inTx(ctx, h.device, func(tx *sql.Tx) (int, int, error) { return s.mergeHead(ctx, tx, h.device) })
		case engine.SealBlock:
			// A backlog (an import, a collector back after an outage) has many windows over:
			// those of the day a pass, in one transaction that writes the day's 5-minute row
			// once, rather than a window a pass and the row again for each.
			ws := []engine.Window{w}
			for next := w; ; ws = append(ws, next) {
				next = engine.Window{Start: next.End, End: next.End + engine.BlockSpan.Microseconds()}
				if engine.Tiers[0].SpanOf(next.Start) != engine.Tiers[0].SpanOf(w.Start) || next.Start > h.MaxTS ||
					!force && next.End+engine.SealAfter.Microseconds() > newest {
					break
				}
			}
			s.partitionPast(ctx, ws[0].Start, ws[len(ws)-1].End)
			read, written, err = s.inTx(ctx, h.device, func(tx *sql.Tx) (r, wr int, err error) {
				sealed, r, wr, err = s.sealWindows(ctx, tx, h.device, ws)
				return r, wr, err
			})
		}
		switch err = classify(err); {
		case err == nil:
			st.add(read, written, sealed)
		case errors.Is(err, errBusy):
			st.Busy++
		case errors.Is(err, telemetry.ErrUnavailable) || ctx.Err() != nil:
			return st, fmt.Errorf("compact chunks of GPU %d: %w", h.device, err)
		default:
			s.log.ErrorContext(ctx, "cannot compact the chunks of a GPU, leaving them", "gpu_id", h.device, "err", err)
		}
	}
	// What the head chunks just sealed took, once there is much of it.
	if err := s.shrinkHeads(ctx, len(heads) == 0, st.Sealed > 0); err != nil {
		s.log.WarnContext(ctx, "cannot give the space of compacted head chunks back", "err", err)
	}
	if st.Backfilled, err = s.backfillRollups(ctx); err != nil {
		return st, classify(fmt.Errorf("write the tiers of windows sealed before them: %w", err))
	}
	st.More = st.More || st.Backfilled == backfillBatch
	headsFrom := make(map[int32]int64, len(heads))
	for _, h := range heads {
		headsFrom[h.device] = h.MinTS
	}
	coarsened, busy, err := s.coarsenDays(ctx, headsFrom, newest, force)
	st.Coarsened, st.Busy = coarsened, st.Busy+busy
	if err != nil {
		return st, classify(fmt.Errorf("write the days over into the coarser tiers: %w", err))
	}
	st.More = st.More || st.Coarsened == coarsenBatch
	if st.Folded, err = s.foldBatches(ctx, force); err != nil {
		return st, classify(fmt.Errorf("fold the ledger of batches: %w", err))
	}
	st.More = st.More || st.Folded == foldLimit
	return st, nil
}

// shrinkHeadsOver is the size chunks_heads may keep beyond what its rows take: what a
// fleet's head chunks take in a few minutes, not worth a lock.
const shrinkHeadsOver = 8 << 20

// shrinkHeads gives back to the disk the space chunks_heads keeps beyond its rows, as after
// an import, a backlog caught up or a fleet that stopped reporting: autovacuum lets later
// rows reuse it, but at a steady rate they use a few windows' worth and the rest stays
// until the table is rewritten. It is rewritten (VACUUM FULL: what is left of it is a
// window or two of head chunks, megabytes, rewritten in a blink) when it takes more than
// four times its rows and shrinkHeadsOver; the lock it takes is waited for briefly, then
// left to the next pass. empty says the pass found no head chunk; otherwise the rows are
// summed (a scan of megabytes) after a pass that sealed windows, which is what frees space,
// or when the last attempt found the table busy.
func (s *Store) shrinkHeads(ctx context.Context, empty, sealed bool) error {
	if s.dialect.name != "postgres" || !empty && !sealed && !s.shrinkHeadsPending.Load() {
		return nil
	}
	over := cmp.Or(s.shrinkHeadsOver, shrinkHeadsOver)
	var size int64
	if err := s.sqlDB.QueryRowContext(ctx, `SELECT pg_table_size('chunks_heads')`).Scan(&size); err != nil || size <= over {
		return err
	}
	if !empty {
		var rows int64
		if err := s.sqlDB.QueryRowContext(ctx, `SELECT coalesce(sum(pg_column_size(data) + 80), 0) FROM chunks_heads`).Scan(&rows); err != nil ||
			size <= 4*rows+over {
			return err
		}
	}
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET lock_timeout = '200ms'`); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `RESET lock_timeout`)
	_, err = conn.ExecContext(ctx, `VACUUM FULL chunks_heads`)
	s.shrinkHeadsPending.Store(isLockTimeout(err)) // busy (autovacuum, a long read): the next pass tries again
	if isLockTimeout(err) {
		return nil
	}
	return err
}

type deviceHead struct {
	device int32
	engine.Head
}

// heads summarises every device's head chunks, and returns the newest point time among
// them.
func (s *Store) heads(ctx context.Context) ([]deviceHead, int64, error) {
	rows, err := s.sqlDB.QueryContext(ctx, s.dialect.rebind(`SELECT gpu_id, min(min_ts), max(max_ts),
		sum(CASE WHEN samples < ? THEN 1 ELSE 0 END), sum(CASE WHEN samples < ? THEN samples ELSE 0 END)
		FROM chunks WHERE `+s.dialect.unsealed+` GROUP BY gpu_id`), engine.HeadMaxSamples, engine.HeadMaxSamples)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var (
		out    []deviceHead
		newest int64
	)
	for rows.Next() {
		var h deviceHead
		var lo, hi timestamp
		if err := rows.Scan(&h.device, &lo, &hi, &h.Small, &h.SmallSamples); err != nil {
			return nil, 0, err
		}
		h.MinTS, h.MaxTS = lo.UnixMicro(), hi.UnixMicro()
		newest = max(newest, h.MaxTS)
		out = append(out, h)
	}
	return out, newest, rows.Err()
}

// inTx runs fn in a transaction holding the device, returning 0 and 0 when another process
// holds it.
// errBusy is a device whose compaction lock another transaction holds.
var errBusy = errors.New("another process is compacting the device")

func (s *Store) inTx(ctx context.Context, device int32, fn func(*sql.Tx) (read, written int, err error)) (int, int, error) {
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	if s.dialect.name == "postgres" {
		var mine bool
		if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1, $2)`, compactLock, device).Scan(&mine); err != nil {
			return 0, 0, err
		}
		if !mine {
			return 0, 0, errBusy
		}
	}
	read, written, err := fn(tx)
	if err != nil || read == 0 {
		return 0, 0, err
	}
	return read, written, tx.Commit()
}

// mergeHead merges a device's small head chunks, the earliest compactMaxChunks of them,
// and its unsealed blocks that are not full, into unsealed blocks.
func (s *Store) mergeHead(ctx context.Context, tx *sql.Tx, device int32) (read, written int, err error) {
	old, err := s.readChunks(ctx, tx, `SELECT id, data FROM chunks WHERE gpu_id = ? AND `+s.dialect.unsealed+
		` AND (samples < ? OR samples < ? AND `+s.dialect.firstByte+` = ?) ORDER BY min_ts LIMIT ?`,
		device, engine.HeadMaxSamples, engine.MergeMaxSamples, engine.BlockFormat, compactMaxChunks)
	if err != nil || len(old.ids) < 2 {
		return 0, 0, err // or another process merged them since the pass began
	}
	merged, repeats := engine.Merge(device, old.pts)
	return s.replaceChunks(ctx, tx, device, old, merged, repeats)
}

// sealWindows re-cuts every chunk of a device overlapping each of ws — windows of one day,
// in order — into the window's blocks, and head chunks for the points outside it, and
// writes their buckets into the day's 5-minute row. A window after the first is left as it
// is unless a head chunk is among its chunks (it is sealed already, or empty). It returns
// how many windows it sealed.
func (s *Store) sealWindows(ctx context.Context, tx *sql.Tx, device int32, ws []engine.Window) (sealed, read, written int, err error) {
	ts := func(us int64) any { return s.dialect.ts(time.UnixMicro(us)) }
	var (
		done    []engine.Window
		buckets []engine.Bucket
	)
	for i, w := range ws {
		if i > 0 {
			var heads int
			if err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT count(*) FROM chunks WHERE gpu_id = ? AND `+s.dialect.unsealed+`
				AND min_ts < ? AND max_ts >= ?`), device, ts(w.End), ts(w.Start)).Scan(&heads); err != nil {
				return 0, 0, 0, err
			}
			if heads == 0 {
				continue
			}
		}
		old, err := s.readChunks(ctx, tx, `SELECT id, data FROM chunks WHERE gpu_id = ? AND min_ts < ? AND max_ts >= ?
			AND min_ts > ?`, device, ts(w.End), ts(w.Start), ts(w.Start-engine.MaxSpan.Microseconds()))
		if err != nil {
			return 0, 0, 0, err
		}
		if len(old.ids) == 0 {
			continue
		}
		chunks, bs, repeats := engine.Seal(device, w, old.pts)
		r, wr, err := s.replaceChunks(ctx, tx, device, old, chunks, repeats)
		if err != nil {
			return 0, 0, 0, err
		}
		read, written = read+r, written+wr
		done, buckets = append(done, w), append(buckets, bs...)
	}
	if len(done) == 0 {
		return 0, 0, 0, nil
	}
	return len(done), read, written, s.writeRollups(ctx, tx, device, done, buckets)
}

// readChunks reads and decodes the chunks a query selects (id and data).
func (s *Store) readChunks(ctx context.Context, tx *sql.Tx, query string, args ...any) (chunksRead, error) {
	var c chunksRead
	rows, err := tx.QueryContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			return c, err
		}
		n := len(c.pts)
		if c.pts, err = engine.Decode(data, c.pts); err != nil || len(c.pts) == n {
			return c, fmt.Errorf("chunk %d: %w", id, cmp.Or(err, engine.ErrCorrupt))
		}
		// A chunk's first and last points are its bounds.
		if lo, hi := c.pts[n].TS, c.pts[len(c.pts)-1].TS; len(c.ids) == 0 {
			c.lo, c.hi = lo, hi
		} else {
			c.lo, c.hi = min(c.lo, lo), max(c.hi, hi)
		}
		c.ids = append(c.ids, id)
	}
	return c, rows.Err()
}

// chunksRead are chunks read to be rewritten: their ids, points and the span of them.
type chunksRead struct {
	ids    []any
	pts    []engine.Point
	lo, hi int64
}

// replaceChunks deletes the chunks read and writes what they became. The span bounds the
// delete to the index entries (and partitions) of those chunks, not the device's history.
// Repeats dropped — samples two writers racing stored both, each batch counting them — are
// counted off the stats, as retention counts what it deletes.
func (s *Store) replaceChunks(ctx context.Context, tx *sql.Tx, device int32, old chunksRead, chunks []engine.Chunk, repeats int) (read, written int, err error) {
	if repeats > 0 {
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`UPDATE pruned SET chunk_samples = chunk_samples + ?`), repeats); err != nil {
			return 0, 0, err
		}
	}
	lo, hi := s.dialect.ts(time.UnixMicro(old.lo)), s.dialect.ts(time.UnixMicro(old.hi))
	for batch := range slices.Chunk(old.ids, 1000) { // bound the statement's parameters
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM chunks WHERE gpu_id = ? AND min_ts >= ? AND min_ts <= ?
			AND max_ts >= ? AND max_ts <= ? AND id IN (`+placeholders(len(batch))+`)`), append([]any{device, lo, hi, lo, hi}, batch...)...); err != nil {
			return 0, 0, err
		}
	}
	if err := s.insertChunks(ctx, tx, chunks); err != nil {
		return 0, 0, err
	}
	return len(old.ids), len(chunks), nil
}

// Compactor runs Compact every interval until ctx ends, at once again while a pass leaves
// work, logging failures (a database down is retried at the next interval) and passes that
// did something: at info level when they took a second or more, as when a backlog of
// windows is sealed, else at debug level.
func (s *Store) Compactor(ctx context.Context, interval time.Duration) error {
	for {
		start := time.Now()
		st, err := s.Compact(ctx)
		s.countMaintenance(func(m *MaintenanceStats) {
			m.CompactionPasses++
			if err != nil && ctx.Err() == nil {
				m.CompactionFailures++
			}
			m.WindowsSealed += int64(st.Sealed)
			m.ChunksRewritten += int64(st.ChunksRead)
			m.BatchesFolded += int64(st.Folded)
		})
		switch elapsed := time.Since(start); {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.WarnContext(ctx, "compaction failed, retrying", "retry_in", interval, "err", err)
		case st.GPUs > 0 || st.Folded > 0 || st.Backfilled > 0 || st.Coarsened > 0:
			level := slog.LevelDebug
			if elapsed >= time.Second {
				level = slog.LevelInfo
			}
			s.log.Log(ctx, level, "compacted chunks", "gpus", st.GPUs, "sealed", st.Sealed, "read", st.ChunksRead,
				"written", st.ChunksWritten, "batches_folded", st.Folded, "tier_windows_backfilled", st.Backfilled, "tier_days_coarsened", st.Coarsened, "more", st.More, "elapsed", elapsed.Round(time.Millisecond))
		}
		if err == nil && st.More {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
