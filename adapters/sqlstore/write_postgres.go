package sqlstore

// Writes on PostgreSQL: batches and their chunks through pgx, chunks by COPY.

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
)

// copyBatches writes batches on PostgreSQL, in one transaction on a pgx connection of the
// pool: their rows in batches, then, with COPY, the chunks of those that were new.
func (s *Store) copyBatches(ctx context.Context, rows []batchRow, chunks func([]bool, overlapFunc) ([]engine.Chunk, []int, error)) ([]bool, []int, error) {
	index, first := firstOfEach(rows)
	stored := make([]bool, len(rows))
	var already []int
	err := s.withPgx(ctx, func(pc *pgx.Conn) error {
		return pgx.BeginFunc(ctx, pc, func(tx pgx.Tx) error {
			clear(stored)
			ids, samples := make([]string, 0, len(index)), make([]int32, 0, len(index))
			los, his := make([]*time.Time, 0, len(index)), make([]*time.Time, 0, len(index))
			for i, r := range rows {
				if !first[i] {
					continue
				}
				ids, samples = append(ids, r.id), append(samples, int32(r.Samples))
				var lo, hi *time.Time
				if r.Samples > 0 {
					l, h := time.UnixMicro(r.MinTS), time.UnixMicro(r.MaxTS)
					lo, hi = &l, &h
				}
				los, his = append(los, lo), append(his, hi)
			}
			res, err := tx.Query(ctx, `INSERT INTO batches (id, samples, min_ts, max_ts)
				SELECT * FROM unnest($1::text[], $2::int4[], $3::timestamptz[], $4::timestamptz[])
				ON CONFLICT (id) DO NOTHING RETURNING id`, ids, samples, los, his)
			if err != nil {
				return err
			}
			for res.Next() {
				var id string
				if err := res.Scan(&id); err != nil {
					res.Close()
					return err
				}
				stored[index[id]] = true
			}
			if res.Close(); res.Err() != nil {
				return res.Err()
			}
			if !slices.Contains(stored, true) {
				return nil // every batch was stored before
			}
			var cs []engine.Chunk
			cs, already, err = chunks(stored, func(spans []engine.Span) ([]engine.StoredChunk, error) {
				// Each GPU's own span, not the batches': a batch of the next scrape would
				// otherwise find every device's chunk of the last one.
				gpus, los, his := make([]int32, len(spans)), make([]time.Time, len(spans)), make([]time.Time, len(spans))
				first := spans[0].Lo
				for i, sp := range spans {
					gpus[i], los[i], his[i] = sp.Device, time.UnixMicro(sp.Lo), time.UnixMicro(sp.Hi)
					first = min(first, sp.Lo)
				}
				rows, err := tx.Query(ctx, `SELECT c.gpu_id, c.data
					FROM unnest($1::int4[], $2::timestamptz[], $3::timestamptz[]) AS s(gpu_id, lo, hi)
					JOIN chunks c ON c.gpu_id = s.gpu_id AND c.max_ts >= s.lo AND c.min_ts <= s.hi
					WHERE c.max_ts >= $4`, gpus, los, his, time.UnixMicro(first))
				if err != nil {
					return nil, err
				}
				return pgx.CollectRows(rows, func(r pgx.CollectableRow) (engine.StoredChunk, error) {
					var c engine.StoredChunk
					err := r.Scan(&c.Device, &c.Data)
					return c, err
				})
			})
			if err != nil {
				return err
			}
			for i, n := range already { // the batch's row counts what it stored
				if n > 0 {
					if _, err := tx.Exec(ctx, `UPDATE batches SET samples = samples - $2 WHERE id = $1`, rows[i].id, n); err != nil {
						return err
					}
				}
			}
			_, err = tx.CopyFrom(ctx, pgx.Identifier{"chunks"}, chunkColumns,
				pgx.CopyFromSlice(len(cs), func(i int) ([]any, error) {
					c := &cs[i]
					return []any{c.Device, time.UnixMicro(c.MinTS), time.UnixMicro(c.MaxTS), c.Samples, c.Data, c.Sealed}, nil
				}))
			if err != nil {
				return err
			}
			// Stamped as the transaction ends, not as it began: the workload recorder looks
			// for batches stored after its pass read the samples (workloads.go).
			_, err = tx.Exec(ctx, `UPDATE batches SET stored_at = clock_timestamp() WHERE id = ANY($1)`, storedIDs(rows, stored))
			return err
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return stored, already, nil
}

// withPgx runs fn on a pgx connection of the pool (PostgreSQL only), for what database/sql
// cannot do (COPY) or does at a cost that counts (reading the chunks of a page).
func (s *Store) withPgx(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error { return fn(driverConn.(*stdlib.Conn).Conn()) })
}

// storedIDs are the IDs of the batches stored.
func storedIDs(rows []batchRow, stored []bool) []string {
	var ids []string
	for i, r := range rows {
		if stored[i] {
			ids = append(ids, r.id)
		}
	}
	return ids
}
