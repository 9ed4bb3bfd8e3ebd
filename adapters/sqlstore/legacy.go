package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// legacyPage is how many rows of the old layout are packed per round (a variable for tests).
var legacyPage = 50_000

// upgradeLegacy packs the rows of the layout before chunks — one row per sample, renamed
// legacy_samples by migration 3 — into chunks, then drops them. It runs in one transaction,
// holding an exclusive lock on PostgreSQL, so processes starting together convert once and a
// crash converts nothing.
func (s *Store) upgradeLegacy(ctx context.Context) error {
	var exists bool
	probe := `SELECT to_regclass('legacy_samples') IS NOT NULL`
	if s.dialect.name == "sqlite" {
		probe = `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'legacy_samples'`
	}
	if err := s.sqlDB.QueryRowContext(ctx, probe).Scan(&exists); err != nil || !exists {
		return err
	}
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.dialect.name == "postgres" {
		if _, err := tx.ExecContext(ctx, `LOCK TABLE legacy_samples IN ACCESS EXCLUSIVE MODE`); err != nil {
			if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "42P01" {
				return nil // undefined table: converted by a process that started alongside
			}
			return err
		}
	}
	gpus, err := queryColumn[int32](ctx, tx, `SELECT DISTINCT gpu_id FROM legacy_samples ORDER BY gpu_id`)
	if err != nil {
		return err
	}
	if len(gpus) == 0 { // a new database: nothing to pack
		if _, err := tx.ExecContext(ctx, `DROP TABLE legacy_samples`); err != nil {
			return err
		}
		return tx.Commit()
	}
	start, lastLog := time.Now(), time.Now()
	total := 0
	s.log.InfoContext(ctx, "packing samples of the previous layout into chunks (once)", "gpus", len(gpus))
	for i, gpu := range gpus {
		n, err := s.upgradeGPU(ctx, tx, gpu)
		if err != nil {
			return fmt.Errorf("pack samples of GPU %d: %w", gpu, err)
		}
		total += n
		if time.Since(lastLog) >= 10*time.Second {
			s.log.InfoContext(ctx, "packing samples", "gpus_done", i+1, "gpus", len(gpus), "samples", total)
			lastLog = time.Now()
		}
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE legacy_samples`); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "packed samples of the previous layout into chunks", "samples", total,
		"gpus", len(gpus), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// upgradeGPU packs one GPU's legacy rows, a page at a time in time order. A page ends on a
// whole instant, so that the next one starts after it without skipping a sample.
func (s *Store) upgradeGPU(ctx context.Context, tx *sql.Tx, gpu int32) (int, error) {
	var (
		total int
		after any // last instant packed; nil before the first page
		pts   []engine.Point
	)
	works := map[engine.Workload]*engine.Workload{}
	for {
		q := `SELECT metric_id, ts, value, container, pod, namespace FROM legacy_samples WHERE gpu_id = ?`
		args := []any{gpu}
		if after != nil {
			q += ` AND ts > ?`
			args = append(args, after)
		}
		rows, err := tx.QueryContext(ctx, s.dialect.rebind(q+` ORDER BY ts LIMIT ?`), append(args, legacyPage)...)
		if err != nil {
			return total, err
		}
		pts = pts[:0]
		for rows.Next() {
			var (
				p                         engine.Point
				ts                        timestamp
				container, pod, namespace sql.NullString
			)
			if err := rows.Scan(&p.Metric, &ts, &p.Value, &container, &pod, &namespace); err != nil {
				rows.Close()
				return total, err
			}
			p.TS = ts.UnixMicro()
			if w := (engine.Workload{Container: container.String, Pod: pod.String, Namespace: namespace.String}); w != (engine.Workload{}) {
				if works[w] == nil {
					works[w] = &w
				}
				p.Work = works[w]
			}
			pts = append(pts, p)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return total, err
		}
		full := len(pts) == legacyPage
		if full { // the last instant may go on in the next page: leave it for that page
			last := pts[len(pts)-1].TS
			for len(pts) > 0 && pts[len(pts)-1].TS == last {
				pts = pts[:len(pts)-1]
			}
			if len(pts) == 0 {
				return total, fmt.Errorf("more than %d samples at one instant", legacyPage)
			}
		}
		if len(pts) > 0 {
			after = s.dialect.ts(time.UnixMicro(pts[len(pts)-1].TS))
			total += len(pts)
			chunks, _ := engine.Cut(gpu, pts, nil)
			if err := s.insertChunks(ctx, tx, chunks); err != nil {
				return total, err
			}
		}
		if !full {
			return total, nil
		}
	}
}
