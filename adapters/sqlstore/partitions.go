package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Blocks are partitioned on PostgreSQL by the time of their last sample (the schema), so
// that retention drops whole partitions and their space goes back to the disk at once. The
// pruner keeps partitions ready for the time to come; a chunk no partition holds — an
// import of last year's file, a chunk written before its partition was made — goes to
// chunks_default, which retention prunes row by row like SQLite's table.
const (
	// partitionsAhead is how many partition spans past now's are made in advance: the next,
	// once now is in the last quarter of its span (hours before it is needed: the pruner
	// runs every minute), and no sooner, since an empty partition takes some 80 kB of index
	// pages.
	partitionsAhead = 1
	// partitionLock is the advisory lock making and dropping partitions, one process at
	// a time.
	partitionLock = 7_315_003
	// partitionPrefix and partitionLayout name a partition by its bounds (UTC):
	// chunks_p20261202t0000_20261203t0000.
	partitionPrefix = "chunks_p"
	partitionLayout = "20060102t1504"
)

// PartitionSpan is the span of the chunk partitions made for a retention: a twelfth of it,
// so that space goes back in steps of a twelfth, within an hour and a day (a day when
// samples are kept forever).
func PartitionSpan(retention time.Duration) time.Duration {
	if retention <= 0 {
		return 24 * time.Hour
	}
	return min(max((retention/12).Truncate(time.Hour), time.Hour), 24*time.Hour)
}

// partition is one partition of chunks other than the default: [from, to).
type partition struct {
	name     string
	from, to time.Time
}

func partitionName(from, to time.Time) string {
	return partitionPrefix + from.UTC().Format(partitionLayout) + "_" + to.UTC().Format(partitionLayout)
}

// listPartitions returns the partitions of blocks the store made, by their names.
func listPartitions(ctx context.Context, tx *sql.Tx) ([]partition, error) {
	rows, err := tx.QueryContext(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'chunks_blocks'::regclass ORDER BY c.relname`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []partition
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		bounds, ok := strings.CutPrefix(name, partitionPrefix)
		lo, hi, ok2 := strings.Cut(bounds, "_")
		from, err1 := time.Parse(partitionLayout, lo)
		to, err2 := time.Parse(partitionLayout, hi)
		if ok && ok2 && err1 == nil && err2 == nil {
			out = append(out, partition{name, from, to})
		}
	}
	return out, rows.Err()
}

// EnsurePartitions makes the partitions of chunks of now's span and, in the last quarter of
// it, of the partitionsAhead spans after it, of span each, aligned to it: not the whole
// retention back, since every partition costs the queries that cannot prune it (first and
// last seen of the GPU list) a lookup; the compactor makes those of past spans it seals
// blocks into (PastPartitions). It does nothing on SQLite.
func (s *Store) EnsurePartitions(ctx context.Context, span time.Duration, now time.Time) error {
	if s.dialect.name != "postgres" {
		return nil
	}
	start := now.Truncate(span)
	last := start
	if now.Sub(start) >= span*3/4 {
		last = start.Add(partitionsAhead * span)
	}
	_, err := s.makePartitions(ctx, span, start, last, 0)
	return err
}

// makePartitions makes the partitions of the spans starting from first to last, aligned to
// span, and returns the starts of all of them once settled: a span already covered — by a
// partition made with another span, say — is left as it is, and so is a span
// chunks_default holds chunks of, which stay there. A partition is made apart and
// attached, which locks chunks_blocks against other DDL only, not against reads and writes;
// wait bounds the wait for locks (0: none). PostgreSQL only.
func (s *Store) makePartitions(ctx context.Context, span time.Duration, first, last time.Time, wait time.Duration) ([]time.Time, error) {
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return nil, classify(err)
	}
	defer tx.Rollback()
	if wait > 0 {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, wait.Milliseconds())); err != nil {
			return nil, classify(err)
		}
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, partitionLock); err != nil {
		return nil, classify(err)
	}
	existing, err := listPartitions(ctx, tx)
	if err != nil {
		return nil, classify(fmt.Errorf("list partitions: %w", err))
	}
	covered := func(from, to time.Time) bool {
		for _, p := range existing {
			if p.from.Before(to) && from.Before(p.to) {
				return true
			}
		}
		return false
	}
	var there []time.Time
	for from := first; !from.After(last); from = from.Add(span) {
		to := from.Add(span)
		if covered(from, to) {
			there = append(there, from)
			continue
		}
		var held bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM chunks_default WHERE max_ts >= $1 AND max_ts < $2)`,
			from, to).Scan(&held); err != nil {
			return nil, classify(fmt.Errorf("look into chunks_default: %w", err))
		}
		if held {
			there = append(there, from)
			continue
		}
		// Attaching checks that chunks_default holds no chunk of the span (a scan of it,
		// which partitions of past spans keep small); the new table, empty, is checked at once.
		name := partitionName(from, to)
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %[1]s (LIKE chunks_blocks INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION);
			ALTER TABLE chunks_blocks ATTACH PARTITION %[1]s FOR VALUES FROM ('%[2]s') TO ('%[3]s')`,
			name, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))); err != nil {
			return nil, classify(fmt.Errorf("make partition %s: %w", name, err))
		}
		there = append(there, from)
	}
	return there, classify(tx.Commit())
}

// PastPartitions has the compactor make the partition of a past span before it seals
// blocks into it — a backlog caught up, an import of last month — so that retention drops
// those blocks whole too, rather than row by row in chunks_default; only spans after floor,
// the samples' cutoff: older ones would be dropped at once. A span of 0 stops it. The pruner
// sets both, as it owns partitions and knows the retention.
func (s *Store) PastPartitions(span time.Duration, floor time.Time) {
	s.past.span.Store(int64(span))
	s.past.floor.Store(floor.UnixMicro())
}

// pastPartitions is what PastPartitions set, and the starts of the spans found partitioned.
type pastPartitions struct {
	span  atomic.Int64 // a time.Duration
	floor atomic.Int64 // unix µs
	mu    sync.Mutex
	known map[time.Time]bool
}

// pastPartitionWait bounds how long the compactor waits to make a partition: a pruner
// deleting from chunks_default, a long read of it. It seals into chunks_default when made
// to wait longer, as before partitions of past spans.
const pastPartitionWait = time.Second

// partitionPast makes the partitions of the past spans that blocks of [from, to) (unix µs)
// end in, as PastPartitions says, logging what it cannot make: those blocks go to
// chunks_default.
func (s *Store) partitionPast(ctx context.Context, from, to int64) {
	span := time.Duration(s.past.span.Load())
	if s.dialect.name != "postgres" || span <= 0 {
		return
	}
	floor := time.UnixMicro(s.past.floor.Load())
	first := time.UnixMicro(from).Truncate(span)
	last := time.UnixMicro(min(to-1, time.Now().UnixMicro())).Truncate(span) // the pruner makes those to come
	s.past.mu.Lock()
	defer s.past.mu.Unlock()
	var need []time.Time
	for t := first; !t.After(last); t = t.Add(span) {
		if !s.past.known[t] && t.Add(span).After(floor) {
			need = append(need, t)
		}
	}
	if len(need) == 0 {
		return
	}
	settled, err := s.makePartitions(ctx, span, need[0], need[len(need)-1], pastPartitionWait)
	if err != nil {
		s.log.DebugContext(ctx, "cannot make the partition of a past span, sealing into chunks_default", "from", need[0], "err", err)
		return
	}
	if s.past.known == nil {
		s.past.known = make(map[time.Time]bool)
	}
	for t := range s.past.known {
		if t.Add(span).Before(floor) {
			delete(s.past.known, t) // dropped, or soon
		}
	}
	for _, t := range settled {
		s.past.known[t] = true
	}
}

// dropPartitions drops, in tx, the partitions whose chunks all end before cutoff, returning
// how many chunks and samples they held. It waits for a lock a second at most — readers in
// the middle of an export hold the table — and drops nothing then: the next pass will.
func dropPartitions(ctx context.Context, tx *sql.Tx, cutoff time.Time) (chunks, samples int64, err error) {
	existing, err := listPartitions(ctx, tx)
	if err != nil {
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '1s'`); err != nil {
		return 0, 0, err
	}
	for _, p := range existing {
		if p.to.After(cutoff) {
			continue
		}
		var n, m int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(samples), 0) FROM `+p.name).Scan(&n, &m); err != nil {
			return 0, 0, err
		}
		if _, err := tx.ExecContext(ctx, `DROP TABLE `+p.name); err != nil {
			return 0, 0, err
		}
		chunks, samples = chunks+n, samples+m
	}
	return chunks, samples, nil
}
