package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
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
// last seen of the GPU list) a lookup. Spans already covered — by a partition made with
// another span, say — are left as they are, and so is a span chunks_default holds chunks
// of, which stay there. It does nothing on SQLite.
func (s *Store) EnsurePartitions(ctx context.Context, span time.Duration, now time.Time) error {
	if s.dialect.name != "postgres" {
		return nil
	}
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, partitionLock); err != nil {
		return classify(err)
	}
	existing, err := listPartitions(ctx, tx)
	if err != nil {
		return classify(fmt.Errorf("list partitions: %w", err))
	}
	covered := func(from, to time.Time) bool {
		for _, p := range existing {
			if p.from.Before(to) && from.Before(p.to) {
				return true
			}
		}
		return false
	}
	start := now.Truncate(span)
	last := start
	if now.Sub(start) >= span*3/4 {
		last = start.Add(partitionsAhead * span)
	}
	for from := start; !from.After(last); from = from.Add(span) {
		to := from.Add(span)
		if covered(from, to) {
			continue
		}
		var held bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM chunks_default WHERE max_ts >= $1 AND max_ts < $2)`,
			from, to).Scan(&held); err != nil {
			return classify(fmt.Errorf("look into chunks_default: %w", err))
		}
		if held {
			continue
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF chunks_blocks FOR VALUES FROM ('%s') TO ('%s')`,
			partitionName(from, to), from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))); err != nil {
			return classify(fmt.Errorf("make partition: %w", err))
		}
	}
	return classify(tx.Commit())
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
