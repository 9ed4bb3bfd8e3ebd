package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Compaction. A batch writes one chunk for each GPU it holds, so a chunk holds what one batch
// brings of a GPU: about 20 samples with the default batch size over the bundled fleet. Reads
// pay per chunk — an index entry and often a heap page each — so the compactor merges a GPU's
// small chunks into full ones, written next to each other, and seals them: the compactor
// never reads a sealed chunk again. Samples never change. Merging moves them from rows to
// rows in one transaction, so that every statement sees each sample exactly once; a scan that
// takes several statements resumes at a time, not at a chunk (scan.go).
const (
	// compactMinSamples is how many samples a GPU's unsealed chunks must hold before they are
	// merged: enough to fill a few chunks, since each merge also rewrites the last, partial
	// one. (At one chunk's worth, compaction cost split mode a fifth of its write speed.)
	compactMinSamples = 4 * chunkMaxSamples
	// compactMaxChunks bounds the chunks one transaction merges.
	compactMaxChunks = 1024
	// compactLock is the first key of PostgreSQL's advisory locks, whose second is a GPU id:
	// one process at a time compacts a GPU.
	compactLock = 0x7465_6c65 // "tele"
)

// CompactStats tells what a pass of the compactor did.
type CompactStats struct {
	GPUs          int  // GPUs whose chunks were merged
	ChunksRead    int  // unsealed chunks merged
	ChunksWritten int  // chunks written in their place
	More          bool // a GPU had more unsealed chunks than one transaction takes
}

// Compact makes one pass over the GPUs whose unsealed chunks hold enough samples, merging each
// GPU's in a transaction of its own. Several processes may compact at once: on PostgreSQL an
// advisory lock gives each GPU to one of them, the others skip it; SQLite runs one
// transaction at a time anyway (and, without an index of unsealed chunks, reads the table to
// find them: it is meant for PostgreSQL). A database that cannot be reached ends the pass
// with an error; a GPU that cannot be compacted (a corrupt chunk) is logged and skipped.
func (s *Store) Compact(ctx context.Context) (CompactStats, error) {
	var st CompactStats
	gpus, err := queryColumn[int32](ctx, s.sqlDB, s.dialect.rebind(`SELECT gpu_id FROM chunks WHERE `+s.dialect.unsealed+`
		GROUP BY gpu_id HAVING count(*) > 1 AND sum(samples) >= ?`), compactMinSamples)
	if err != nil {
		return st, classify(fmt.Errorf("find chunks to compact: %w", err))
	}
	// Processes that compact at once start at different GPUs rather than queueing on the
	// same locks.
	rand.Shuffle(len(gpus), func(i, j int) { gpus[i], gpus[j] = gpus[j], gpus[i] })
	for _, gpu := range gpus {
		read, written, err := s.compactGPU(ctx, gpu)
		switch err = classify(err); {
		case err == nil:
		case errors.Is(err, telemetry.ErrUnavailable) || ctx.Err() != nil:
			return st, fmt.Errorf("compact chunks of GPU %d: %w", gpu, err)
		default:
			s.log.ErrorContext(ctx, "cannot compact the chunks of a GPU, leaving them", "gpu_id", gpu, "err", err)
			continue
		}
		if read > 0 {
			st.GPUs++
			st.ChunksRead += read
			st.ChunksWritten += written
			st.More = st.More || read == compactMaxChunks
		}
	}
	return st, nil
}

// compactGPU merges a GPU's unsealed chunks, the earliest compactMaxChunks of them: the
// points are re-cut into chunks of the usual bounds, which are sealed except the last — it
// may be short, and the GPU's next batches may fill it. It returns how many chunks it read
// and wrote, 0 and 0 when the GPU was not worth it (any more) or another process held it.
func (s *Store) compactGPU(ctx context.Context, gpu int32) (read, written int, err error) {
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	if s.dialect.name == "postgres" {
		var mine bool
		if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1, $2)`, compactLock, gpu).Scan(&mine); err != nil || !mine {
			return 0, 0, err
		}
	}
	rows, err := tx.QueryContext(ctx, s.dialect.rebind(`SELECT id, data FROM chunks WHERE gpu_id = ? AND `+s.dialect.unsealed+`
		ORDER BY min_ts LIMIT ?`), gpu, compactMaxChunks)
	if err != nil {
		return 0, 0, err
	}
	var (
		ids []any
		pts []point
	)
	for rows.Next() {
		var id int64
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			rows.Close()
			return 0, 0, err
		}
		if pts, err = decodeChunk(data, pts); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("chunk %d: %w", id, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return 0, 0, err
	}
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	if len(ids) < 2 || len(pts) < compactMinSamples {
		return 0, 0, nil // another process merged them since the pass began
	}
	// Repeats — writes that raced with the same samples, or stored before writes looked for
	// them — go as the chunks merge.
	merged, _ := cutChunks(gpu, pts, nil)
	for i := range merged[:len(merged)-1] {
		merged[i].sealed = true
	}
	if _, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM chunks WHERE gpu_id = ? AND `+s.dialect.unsealed+
		` AND id IN (`+placeholders(len(ids))+`)`), append([]any{gpu}, ids...)...); err != nil {
		return 0, 0, err
	}
	if err := s.insertChunks(ctx, tx, merged); err != nil {
		return 0, 0, err
	}
	return len(ids), len(merged), tx.Commit()
}

// Compactor runs Compact every interval until ctx ends, at once again while a pass leaves
// work, logging failures (a database down is retried at the next interval) and passes that
// did something: at info level when they took a second or more, as when a database written
// before compaction existed is packed, else at debug level.
func (s *Store) Compactor(ctx context.Context, interval time.Duration) error {
	for {
		start := time.Now()
		st, err := s.Compact(ctx)
		switch elapsed := time.Since(start); {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.WarnContext(ctx, "compaction failed, retrying", "retry_in", interval, "err", err)
		case st.GPUs > 0:
			level := slog.LevelDebug
			if elapsed >= time.Second {
				level = slog.LevelInfo
			}
			s.log.Log(ctx, level, "compacted chunks", "gpus", st.GPUs, "read", st.ChunksRead,
				"written", st.ChunksWritten, "more", st.More, "elapsed", elapsed.Round(time.Millisecond))
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
