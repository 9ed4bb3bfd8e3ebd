package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// window bounds a scan in Unix microseconds, inclusive; an unset side is open.
type window struct {
	lo, hi       int64
	hasLo, hasHi bool
}

func windowOf(r telemetry.TimeRange) window {
	var w window
	if !r.Start.IsZero() {
		w.lo, w.hasLo = r.Start.UnixMicro(), true
	}
	if !r.End.IsZero() {
		w.hi, w.hasHi = r.End.UnixMicro(), true
	}
	return w
}

func (w window) holds(ts int64) bool { return (!w.hasLo || ts >= w.lo) && (!w.hasHi || ts <= w.hi) }

// scanRequest is one scan of a GPU's points.
type scanRequest struct {
	gpu    int32
	window window
	desc   bool
	// keep, when set, drops points (beyond the window, which is applied anyway).
	keep func(*engine.Point) bool
	// want is how many points the caller expects to need, 0 when it reads to the end. It
	// sizes the queries: a page is one query in the common case, an export a few large ones.
	want int
}

// after narrows the request to the points after mark in its order: later ones ascending,
// earlier ones descending.
func (r scanRequest) after(mark engine.Point) scanRequest {
	r, keep := r.from(mark.TS), r.keep
	if r.desc {
		r.keep = func(p *engine.Point) bool { return engine.Before(p, &mark) && (keep == nil || keep(p)) }
	} else {
		r.keep = func(p *engine.Point) bool { return engine.Before(&mark, p) && (keep == nil || keep(p)) }
	}
	return r
}

// from narrows the request's window to start at ts (end at ts descending), inclusive.
func (r scanRequest) from(ts int64) scanRequest {
	if r.desc && (!r.window.hasHi || ts < r.window.hi) {
		r.window.hi, r.window.hasHi = ts, true
	}
	if !r.desc && (!r.window.hasLo || ts > r.window.lo) {
		r.window.lo, r.window.hasLo = ts, true
	}
	return r
}

const (
	maxScanRows = 1024
	// guessChunkPoints is what a chunk is taken to hold until a scan of the GPU tells: a
	// batch of 5,000 samples over the bundled file's 247 GPUs writes chunks of 20.
	guessChunkPoints = 16
)

// firstRows sizes a scan's first query from the points a chunk of the GPU held in earlier
// scans — of any GPU, for the first scan of one — so that a page is one query of barely
// more rows than it needs.
func (s *Store) firstRows(r scanRequest) int {
	if r.want == 0 {
		return maxScanRows / 4
	}
	s.mu.Lock()
	perRow, ok := s.density[r.gpu]
	if !ok {
		perRow, ok = s.density[anyGPU]
	}
	s.mu.Unlock()
	if !ok {
		perRow = guessChunkPoints
	}
	// The round's last chunk is read again by the next round, and the first one may lie
	// mostly before the window: two more.
	return min(int(float64(r.want)/perRow*1.1)+2, maxScanRows)
}

// anyGPU keys the density that scans of every GPU saw, in Store.density.
const anyGPU = -1

// learnDensity records the points per chunk a scan of the GPU saw.
func (s *Store) learnDensity(gpu int32, points, rows int) {
	if rows == 0 {
		return
	}
	seen := float64(points) / float64(rows)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, key := range []int32{gpu, anyGPU} {
		if perRow, ok := s.density[key]; ok {
			s.density[key] = max((perRow+seen)/2, 1) // compaction and other batch sizes change it
		} else {
			s.density[key] = max(seen, 1)
		}
	}
}

// nextRows sizes the next round of a scan from what the rounds so far yielded.
func (r scanRequest) nextRows(rows, read, kept int) int {
	switch {
	case r.want == 0:
		return maxScanRows / 4
	case kept == 0:
		return min(rows*4, maxScanRows)
	}
	perRow := float64(kept) / float64(read)
	return min(max(int(float64(r.want-kept)/perRow*1.25)+2, 4), maxScanRows)
}

// scan calls emit with the points of one GPU in the window, ordered by (time, metric id) —
// reversed when desc — until there are no more or emit returns an error, which scan returns.
//
// Chunks of one GPU may overlap in time (two batches, or a batch and a late one). Ascending,
// chunks come by start time: once a chunk starting at t is read, every point before t is
// final, because no chunk still unread starts earlier. Points not yet final wait in a small
// buffer. Descending is the mirror image, by end time. Chunks are fetched in rounds, so that
// a page reads a few rows and an export streams in constant memory. A round starts where
// the points stopped being final in the one before — at the start of its last chunk — and
// reads again what was not emitted from there: the compactor may have moved points between
// chunks in between, so chunks are no place to resume at, but times are.
func (s *Store) scan(ctx context.Context, r scanRequest, emit func(engine.Point) error) error {
	return s.scanRuns(ctx, r, func(run []engine.Point) error {
		for _, p := range run {
			if err := emit(p); err != nil {
				return err
			}
		}
		return nil
	})
}

// scanRuns is scan handing points over in runs, which emit must not keep: what a reader of
// many points, an aggregation, wants rather than a call a point.
func (s *Store) scanRuns(ctx context.Context, r scanRequest, emit func([]engine.Point) error) error {
	bufs := scanPool.Get().(*scanBuffers)
	defer bufs.release()
	m := &bufs.merger
	m.Desc = r.desc
	var (
		round      = r
		rows       = s.firstRows(r)
		read, kept int // chunks and points, over all rounds
		points     int // decoded, over all rounds
		chunks     int // decoded: a page stops before the last rows of its round
		emitted    bool
		last       engine.Point // emitted
	)
	out := func(run []engine.Point) error {
		emitted, last = true, run[len(run)-1]
		return emit(run)
	}
	defer func() { s.learnDensity(r.gpu, points, chunks) }()
	// Ascending walks chunks by start, descending by end, each along its index.
	order := " ORDER BY min_ts LIMIT ?"
	if r.desc {
		order = " ORDER BY max_ts DESC LIMIT ?"
	}
	for {
		var bound int64 // of the round's last chunk: its start ascending, its end descending
		sqlText, args := s.chunkQuery(round)
		n, err := s.scanRound(ctx, sqlText+order, append(args, rows), func(id int64, data []byte) error {
			decoded, err := engine.Decode(data, bufs.decoded[:0])
			bufs.decoded = decoded
			if err != nil || len(decoded) == 0 {
				return fmt.Errorf("chunk %d: %w", id, cmp.Or(err, engine.ErrCorrupt))
			}
			points, chunks = points+len(decoded), chunks+1
			// A chunk's points are sorted: its first and last are its min_ts and max_ts.
			bound = decoded[0].TS
			if r.desc {
				bound = decoded[len(decoded)-1].TS
			}
			if err := m.EmitRunBefore(bound, out); err != nil {
				return err
			}
			run := decoded
			if round.keep != nil || !round.window.holds(decoded[0].TS) || !round.window.holds(decoded[len(decoded)-1].TS) {
				run = decoded[:0]
				for i := range decoded {
					if p := &decoded[i]; round.window.holds(p.TS) && (round.keep == nil || round.keep(p)) {
						run = append(run, *p)
					}
				}
			}
			kept += len(run)
			bufs.decoded = m.Take(run)
			return nil
		})
		read += n
		if err != nil {
			return err
		}
		if n < rows {
			return m.EmitRunAll(out)
		}
		// The next round starts at the bound, never before this round's start (when every
		// chunk of the round began earlier and overlaps it), and after the last point
		// emitted. It narrows r, not round, so that filters do not nest round after round.
		next := r
		next.window = round.from(bound).window
		if emitted {
			next = next.after(last)
		}
		if next.window == round.window {
			// No chunk of the round started after the round did, so no point became final:
			// read more at once. It takes as many chunks as overlap one instant of one GPU.
			rows *= 4
		} else {
			rows = r.nextRows(rows, read, kept)
		}
		m.Reset()
		round = next
	}
}

// scanBuffers are a scan's decoded points and merger, which scans reuse: an aggregation over
// a day decodes some 100,000 points.
type scanBuffers struct {
	decoded []engine.Point
	merger  engine.Merger
}

var scanPool = sync.Pool{New: func() any { return new(scanBuffers) }}

func (b *scanBuffers) release() {
	if cap(b.decoded) > 1<<16 {
		return // an unusually large chunk's: let it go
	}
	b.merger.Reset()
	scanPool.Put(b)
}

// chunkQuery selects the chunks that may hold points of the request's window, without order.
func (s *Store) chunkQuery(r scanRequest) (string, []any) {
	conds, args := s.windowConds(r.window, r.desc)
	return "SELECT id, data FROM chunks WHERE gpu_id = ?" + conds, append([]any{r.gpu}, args...)
}

// windowConds are the conditions, each after " AND ", on chunks that may hold points of the
// window, for a scan in its direction.
func (s *Store) windowConds(w window, desc bool) (string, []any) {
	span := engine.MaxSpan.Microseconds()
	ts := func(us int64) any { return s.dialect.ts(time.UnixMicro(us)) }
	var conds []string
	var args []any
	if w.hasLo {
		conds = append(conds, "max_ts >= ?")
		args = append(args, ts(w.lo))
		if !desc {
			conds = append(conds, "min_ts > ?") // chunks span less than chunkSpan
			args = append(args, ts(w.lo-span))
		}
	}
	if w.hasHi {
		conds = append(conds, "min_ts <= ?", "max_ts < ?") // the second prunes partitions
		args = append(args, ts(w.hi), ts(w.hi+span))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " AND " + strings.Join(conds, " AND "), args
}

// scanRound runs one query of chunks and calls fn for each; it returns how many rows came.
// The rows are read in full before fn runs, so that no connection is held while callers
// work (resolve a name, write to a slow client): SQLite has a single one.
func (s *Store) scanRound(ctx context.Context, sqlText string, args []any, fn func(id int64, data []byte) error) (int, error) {
	buf := roundBuffers.Get().(*roundBuffer)
	defer buf.release()
	var err error
	if s.dialect.name == "postgres" {
		err = s.withPgx(ctx, func(c *pgx.Conn) error { return buf.readPgx(ctx, c, s.dialect.rebind(sqlText), args) })
	} else {
		err = buf.read(ctx, s.sqlDB, sqlText, args)
	}
	if err != nil {
		return 0, classify(fmt.Errorf("read chunks: %w", err))
	}
	start := 0
	for _, r := range buf.rows {
		if err := fn(r.id, buf.data[start:r.end]); err != nil {
			return len(buf.rows), err
		}
		start = r.end
	}
	return len(buf.rows), nil
}

// roundBuffer holds the rows of one round: their data back to back. Rounds reuse them, since
// a busy API reads a few hundred kilobytes of chunks per page.
type roundBuffer struct {
	rows []roundRow
	data []byte
}

type roundRow struct {
	id  int64
	end int // of the row's data in roundBuffer.data
}

var roundBuffers = sync.Pool{New: func() any { return new(roundBuffer) }}

func (b *roundBuffer) add(id int64, data []byte) {
	b.data = append(b.data, data...)
	b.rows = append(b.rows, roundRow{id: id, end: len(b.data)})
}

// read runs a query of (id, data) rows through database/sql.
func (b *roundBuffer) read(ctx context.Context, db *sql.DB, sqlText string, args []any) error {
	rows, err := db.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		id  int64
		raw sql.RawBytes // valid until the next row
	)
	for rows.Next() {
		if err := rows.Scan(&id, &raw); err != nil {
			return err
		}
		b.add(id, raw)
	}
	return rows.Err()
}

// readPgx runs a query of (id, data) rows on a pgx connection, taking the values as they
// arrive in PostgreSQL's binary format (a big-endian int8 and the bytes of a bytea): a page
// reads a few dozen rows, and database/sql's per-row machinery was a tenth of its cost.
func (b *roundBuffer) readPgx(ctx context.Context, c *pgx.Conn, sqlText string, args []any) error {
	rows, err := c.Query(ctx, sqlText, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	binaryFormat := len(fields) == 2 && fields[0].Format == pgx.BinaryFormatCode && fields[1].Format == pgx.BinaryFormatCode
	var (
		id   int64
		data []byte
	)
	for rows.Next() {
		if raw := rows.RawValues(); binaryFormat && len(raw[0]) == 8 {
			b.add(int64(binary.BigEndian.Uint64(raw[0])), raw[1])
			continue
		}
		if err := rows.Scan(&id, &data); err != nil {
			return err
		}
		b.add(id, data)
	}
	return rows.Err()
}

func (b *roundBuffer) release() {
	if cap(b.data) > 4<<20 {
		return // an export's large round: let it go
	}
	b.rows, b.data = b.rows[:0], b.data[:0]
	roundBuffers.Put(b)
}
