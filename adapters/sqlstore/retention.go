package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
)

// PruneStats is what one pass of retention deleted.
type PruneStats struct {
	Chunks, Samples int64 // chunks deleted, and the samples they held
	Batches         int64 // batch rows deleted
	Rollups         int64 // rows of the downsampled tiers deleted
	Workloads       int64 // workload records deleted
}

// Retention is how long the store keeps each kind of data, 0 for ever.
type Retention struct {
	Raw       time.Duration   // samples
	Tiers     []time.Duration // the downsampled tiers', as engine.Tiers lists them; missing: for ever
	Workloads time.Duration   // closed workload records, by their end
	// Recorded makes samples wait for the workload recorder: none goes before the recorder
	// has read it. For processes that run the recorder.
	Recorded bool
}

// Cutoffs are where a pass of retention cuts: what is older goes; the zero time keeps all.
type Cutoffs struct {
	Raw       time.Time
	Tiers     []time.Time // as engine.Tiers lists them
	Workloads time.Time
}

// RecorderKeeps is how far before the workload recorder's cursor samples are kept: what
// it reads before its cursor (a sample stands for 5 minutes at most), and the hour it
// goes back to when samples of it arrive late.
const RecorderKeeps = time.Hour + usage.DefaultGap

// retentionLock is the PostgreSQL advisory lock one pruner at a time holds.
const retentionLock = 7_315_002

// Prune deletes the sealed blocks whose samples are all older than the raw cutoff — on
// PostgreSQL whole partitions first (partitions.go) — the rows of batches whose samples all were, and
// each tier's rows older than its cutoff (rollups.go), in one transaction, counting what it
// deleted for the stats. A chunk holding a sample at or after the cutoff stays whole, so
// samples up to a block's window older may outlive it. On PostgreSQL one process at a time
// prunes: another, finding the lock held, deletes nothing. GPUs, metrics and which GPU
// reports which metric stay: the fleet bounds them, not time.
func (s *Store) Prune(ctx context.Context, c Cutoffs) (PruneStats, error) {
	var st PruneStats
	before := c.Raw
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return st, classify(err)
	}
	defer tx.Rollback()
	if s.dialect.name == "postgres" {
		var mine bool
		if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1)`, retentionLock).Scan(&mine); err != nil || !mine {
			return st, classify(err)
		}
	}
	if st.Rollups, err = s.pruneRollups(ctx, tx, c.Tiers); err != nil {
		return st, classify(fmt.Errorf("prune the downsampled tiers: %w", err))
	}
	var hours time.Time // the hourly usage sums go with the 5-minute tier
	if len(c.Tiers) > 0 {
		hours = c.Tiers[0]
	}
	if st.Workloads, err = s.pruneWorkloads(ctx, tx, c.Workloads, hours); err != nil {
		return st, classify(fmt.Errorf("prune workload records: %w", err))
	}
	if before.IsZero() {
		return st, classify(tx.Commit())
	}
	cutoff := s.dialect.ts(before)
	if s.dialect.name == "postgres" {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, partitionLock); err != nil {
			return st, classify(err)
		}
		if st.Chunks, st.Samples, err = dropPartitions(ctx, tx, before); err != nil {
			return st, classify(fmt.Errorf("drop partitions: %w", err))
		}
	}
	// What no partition dropped held: chunks_default's, the partition the cutoff falls in,
	// SQLite's table. Sealed blocks only: a head chunk waits for its window to be sealed,
	// which writes its samples into the tiers, so that an import faster than compaction
	// loses none of its history to the samples' retention.
	chunks, samples, err := deleteOlder(ctx, tx, s.dialect, "chunks", "max_ts < ? AND NOT ("+s.dialect.unsealed+")", cutoff)
	if err != nil {
		return st, classify(fmt.Errorf("prune chunks: %w", err))
	}
	st.Chunks, st.Samples = st.Chunks+chunks, st.Samples+samples
	// An empty batch has no span: its time is when it was stored.
	var batchSamples int64
	st.Batches, batchSamples, err = deleteOlder(ctx, tx, s.dialect, "batches", "(max_ts < ? OR (max_ts IS NULL AND stored_at < ?))", cutoff, cutoff)
	if err != nil {
		return st, classify(fmt.Errorf("prune batches: %w", err))
	}
	if st.Chunks == 0 && st.Batches == 0 {
		return st, classify(tx.Commit())
	}
	if _, err := tx.ExecContext(ctx, s.dialect.rebind(`UPDATE pruned SET batch_samples = batch_samples + ?, chunk_samples = chunk_samples + ?,
		samples_before = CASE WHEN samples_before IS NULL OR samples_before < ? THEN ? ELSE samples_before END`),
		batchSamples, st.Samples, cutoff, cutoff); err != nil {
		return st, classify(fmt.Errorf("count what was pruned: %w", err))
	}
	if err := tx.Commit(); err != nil {
		return st, classify(err)
	}
	if s.dialect.name == "sqlite" {
		// Give the pages freed back to the file system (auto_vacuum is incremental: store.go).
		if _, err := s.sqlDB.ExecContext(ctx, `PRAGMA incremental_vacuum`); err != nil {
			return st, classify(fmt.Errorf("return freed pages: %w", err))
		}
	}
	return st, nil
}

// deleteOlder deletes the rows of table that match where, returning how many and the sum of
// their samples.
func deleteOlder(ctx context.Context, tx *sql.Tx, d dialect, table, where string, args ...any) (rows, samples int64, err error) {
	if d.name == "postgres" {
		err = tx.QueryRowContext(ctx, d.rebind(`WITH gone AS (DELETE FROM `+table+` WHERE `+where+` RETURNING samples)
			SELECT count(*), coalesce(sum(samples), 0) FROM gone`), args...).Scan(&rows, &samples)
		return rows, samples, err
	}
	err = tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(samples), 0) FROM `+table+` WHERE `+where, args...).Scan(&rows, &samples)
	if err != nil || rows == 0 {
		return rows, samples, err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+where, args...)
	return rows, samples, err
}

// Cutoff is where retention cuts: retention before the newest sample stored, as
// Prometheus counts it, so that an import of last year's data is kept as long as it is
// the newest there is — but never later than retention before now, so that a sample
// stamped in the future cannot take the rest with it. A store without samples has no
// cutoff (the zero time): counting from now, it would delete the first batches of an old
// file as they arrive.
func (s *Store) Cutoff(ctx context.Context, retention time.Duration, now time.Time) (time.Time, error) {
	var newest timestamp
	if err := s.db.WithContext(ctx).Raw(`SELECT max(max_ts) FROM batches`).Row().Scan(&newest); err != nil {
		return time.Time{}, classify(fmt.Errorf("find the newest sample: %w", err))
	}
	if newest.Time.IsZero() {
		return time.Time{}, nil
	}
	if newest.Time.After(now) {
		return now.Add(-retention), nil
	}
	return newest.Time.Add(-retention), nil
}

// Cutoffs returns where each kind of data is cut, each as Cutoff has it.
func (s *Store) Cutoffs(ctx context.Context, r Retention, now time.Time) (Cutoffs, error) {
	var c Cutoffs
	var err error
	if r.Raw > 0 {
		if c.Raw, err = s.Cutoff(ctx, r.Raw, now); err != nil {
			return c, err
		}
		// Samples wait for the workload recorder, once it runs, so that every hold is
		// recorded before its samples go (the recorder reads a little before its cursor).
		through := time.Time{}
		if r.Recorded {
			if through, err = s.workloadsThrough(ctx, s.sqlDB); err != nil {
				return c, err
			}
		}
		if wait := through.Add(-RecorderKeeps); !through.IsZero() && wait.Before(c.Raw) {
			c.Raw = wait
		}
	}
	if r.Workloads > 0 {
		if c.Workloads, err = s.Cutoff(ctx, r.Workloads, now); err != nil {
			return c, err
		}
	}
	for _, keep := range r.Tiers {
		var cut time.Time
		if keep > 0 {
			if cut, err = s.Cutoff(ctx, keep, now); err != nil {
				return c, err
			}
		}
		c.Tiers = append(c.Tiers, cut)
	}
	return c, nil
}

// Pruner runs Prune every interval until ctx ends, at the Cutoffs of retention, logging what
// it deleted and, retrying at the next interval, what failed; and before each, on
// PostgreSQL, EnsurePartitions, and tells the compactor which PastPartitions to make. What its first pass deletes was mostly stored before the
// process started — an import of old data, often — and is logged as a warning, with the
// count.
func (s *Store) Pruner(ctx context.Context, retention Retention, interval time.Duration, now func() time.Time) error {
	span := PartitionSpan(retention.Raw)
	for first := true; ; first = false {
		if err := s.EnsurePartitions(ctx, span, now()); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "retention: making partitions failed, retrying", "retry_in", interval, "err", err)
		}
		cutoffs, err := s.Cutoffs(ctx, retention, now())
		before := cutoffs.Raw
		if err == nil && retention.Raw > 0 {
			s.PastPartitions(span, before)
		}
		var st PruneStats
		if err == nil {
			st, err = s.Prune(ctx, cutoffs)
		}
		s.countMaintenance(func(m *MaintenanceStats) {
			m.RetentionPasses++
			if err != nil && ctx.Err() == nil {
				m.RetentionFailures++
			}
			m.ChunksPruned += st.Chunks
			m.SamplesPruned += st.Samples
			m.RollupsPruned += st.Rollups
			m.WorkloadsPruned += st.Workloads
		})
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.WarnContext(ctx, "retention: pruning failed, retrying", "retry_in", interval, "err", err)
		case (st.Chunks > 0 || st.Batches > 0) && first:
			s.log.WarnContext(ctx, "retention: deleted samples at start, older than the retention behind the newest sample: an import of older data goes too (keep it with --retention=0 or a longer one)",
				"before", before, "retention", retention.Raw, "samples", st.Samples, "chunks", st.Chunks, "batches", st.Batches)
		case st.Chunks > 0 || st.Batches > 0 || st.Rollups > 0 || st.Workloads > 0:
			s.log.InfoContext(ctx, "retention: pruned", "before", before, "chunks", st.Chunks,
				"samples", st.Samples, "batches", st.Batches, "rollups", st.Rollups, "workloads", st.Workloads)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
