package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

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
	keep func(*point) bool
	// want is how many points the caller expects to need, 0 when it reads to the end. It
	// sizes the queries: a page is one query in the common case, an export a few large ones.
	want int
}

const (
	maxScanRows      = 1024
	guessChunkPoints = 16 // points a chunk holds, until the first round tells: a batch of
	// 5,000 over the bundled file's 247 GPUs gives 20; fetching a few rows too many costs
	// less than a second query
)

// nextRows sizes the next round of a scan from what the rounds so far yielded.
func (r scanRequest) nextRows(read, kept int) int {
	switch {
	case r.want == 0:
		return maxScanRows / 4
	case read == 0:
		return min(max(r.want/guessChunkPoints+1, 4), maxScanRows)
	case kept == 0:
		return min(read*4, maxScanRows)
	}
	perRow := float64(kept) / float64(read)
	return min(max(int(float64(r.want-kept)/perRow*1.25)+1, 4), maxScanRows)
}

// scan calls emit with the points of one GPU in the window, ordered by (time, metric id) —
// reversed when desc — until there are no more or emit returns an error, which scan returns.
//
// Chunks of one GPU may overlap in time (two batches, or a batch and a late one). Ascending,
// chunks come by start time: once a chunk starting at t is read, every point before t is
// final, because no chunk still unread starts earlier. Points not yet final wait in a small
// buffer. Descending is the mirror image, by end time. Chunks are fetched by keyset in rounds
// of growing size, so a page reads a few rows and an export streams in constant memory.
func (s *Store) scan(ctx context.Context, r scanRequest, emit func(point) error) error {
	m := merger{desc: r.desc}
	var (
		after      bool // a chunk was read: continue after it
		afterTS    int64
		afterID    int64
		decoded    []point
		read, kept int
		rows       = r.nextRows(0, 0)
		sqlText, a = s.chunkQuery(r)
	)
	// Ascending walks chunks by start, descending by end; id breaks ties.
	col, op, dir := "min_ts", ">", ""
	if r.desc {
		col, op, dir = "max_ts", "<", " DESC"
	}
	for {
		sqlRound, args := sqlText, a[:len(a):len(a)]
		if after {
			sqlRound += " AND (" + col + ", id) " + op + " (?, ?)"
			args = append(args, s.dialect.ts(time.UnixMicro(afterTS)), afterID)
		}
		sqlRound += " ORDER BY " + col + dir + ", id" + dir + " LIMIT ?"
		args = append(args, rows)

		n, err := s.scanRound(ctx, sqlRound, args, func(id int64, data []byte) error {
			var err error
			if decoded, err = decodeChunk(data, decoded[:0]); err != nil || len(decoded) == 0 {
				return fmt.Errorf("chunk %d: %w", id, cmp.Or(err, errCorruptChunk))
			}
			// A chunk's points are sorted: its first and last are its min_ts and max_ts.
			bound := decoded[0].ts
			if r.desc {
				bound = decoded[len(decoded)-1].ts
			}
			if err := m.emitBefore(bound, emit); err != nil {
				return err
			}
			run := decoded[:0]
			for i := range decoded {
				if p := &decoded[i]; r.window.holds(p.ts) && (r.keep == nil || r.keep(p)) {
					run = append(run, *p)
				}
			}
			kept += len(run)
			m.add(run)
			after, afterTS, afterID = true, bound, id
			return nil
		})
		if err != nil {
			return err
		}
		if n < rows {
			return m.emitAll(emit)
		}
		read += n
		rows = r.nextRows(read, kept)
	}
}

// chunkQuery selects the chunks that may hold points of the request's window, without order.
func (s *Store) chunkQuery(r scanRequest) (string, []any) {
	span := chunkSpan.Microseconds()
	ts := func(us int64) any { return s.dialect.ts(time.UnixMicro(us)) }
	conds, args := []string{"gpu_id = ?"}, []any{r.gpu}
	if r.window.hasLo {
		conds = append(conds, "max_ts >= ?")
		args = append(args, ts(r.window.lo))
		if !r.desc {
			conds = append(conds, "min_ts > ?") // chunks span less than chunkSpan
			args = append(args, ts(r.window.lo-span))
		}
	}
	if r.window.hasHi {
		conds = append(conds, "min_ts <= ?")
		args = append(args, ts(r.window.hi))
		if r.desc {
			conds = append(conds, "max_ts < ?")
			args = append(args, ts(r.window.hi+span))
		}
	}
	return "SELECT id, data FROM chunks WHERE " + strings.Join(conds, " AND "), args
}

// scanRound runs one query of chunks and calls fn for each; it returns how many rows came.
// The rows are read in full before fn runs, so that no connection is held while callers
// work (resolve a name, write to a slow client): SQLite has a single one.
func (s *Store) scanRound(ctx context.Context, sqlText string, args []any, fn func(id int64, data []byte) error) (int, error) {
	buf := roundBuffers.Get().(*roundBuffer)
	defer buf.release()
	err := func() error {
		rows, err := s.sqlDB.QueryContext(ctx, s.dialect.rebind(sqlText), args...)
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
			buf.data = append(buf.data, raw...)
			buf.rows = append(buf.rows, roundRow{id: id, end: len(buf.data)})
		}
		return rows.Err()
	}()
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

func (b *roundBuffer) release() {
	if cap(b.data) > 4<<20 {
		return // an export's large round: let it go
	}
	b.rows, b.data = b.rows[:0], b.data[:0]
	roundBuffers.Put(b)
}

// merger holds points read but not yet final, in output order.
type merger struct {
	desc    bool
	pending []point
	scratch []point
}

// precedes reports whether a comes before b in the output.
func (m *merger) precedes(a, b *point) bool {
	if m.desc {
		return before(b, a)
	}
	return before(a, b)
}

// emitBefore emits the pending points that come before a chunk bounded by bound: earlier
// than its start ascending, later than its end descending.
func (m *merger) emitBefore(bound int64, emit func(point) error) error {
	i := 0
	for ; i < len(m.pending); i++ {
		ts := m.pending[i].ts
		if (!m.desc && ts >= bound) || (m.desc && ts <= bound) {
			break
		}
		if err := emit(m.pending[i]); err != nil {
			return err
		}
	}
	m.pending = m.pending[:copy(m.pending, m.pending[i:])]
	return nil
}

func (m *merger) emitAll(emit func(point) error) error {
	for _, p := range m.pending {
		if err := emit(p); err != nil {
			return err
		}
	}
	m.pending = m.pending[:0]
	return nil
}

// add merges a chunk's points, ascending as stored, into the pending ones.
func (m *merger) add(run []point) {
	if m.desc {
		for i, j := 0, len(run)-1; i < j; i, j = i+1, j-1 {
			run[i], run[j] = run[j], run[i]
		}
	}
	if len(m.pending) == 0 {
		m.pending = append(m.pending, run...)
		return
	}
	out := m.scratch[:0]
	i, j := 0, 0
	for i < len(m.pending) && j < len(run) {
		if m.precedes(&run[j], &m.pending[i]) {
			out = append(out, run[j])
			j++
		} else {
			out = append(out, m.pending[i])
			i++
		}
	}
	out = append(append(out, m.pending[i:]...), run[j:]...)
	m.pending, m.scratch = out, m.pending
}
