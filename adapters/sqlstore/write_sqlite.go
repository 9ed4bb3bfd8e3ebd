package sqlstore

// Writes on SQLite: batches and their chunks by multi-row INSERTs, one writer.

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
)

// sqliteChunk is how many chunks one INSERT statement carries. The pure-Go driver matches
// each bound parameter against the argument list one by one, so a statement's cost grows
// with the square of its parameters.
const sqliteChunk = 64

// insertBatches writes batches on SQLite in one transaction: their rows in batches, then,
// with multi-row INSERTs, the chunks of those that were new.
func (s *Store) insertBatches(ctx context.Context, rows []batchRow, chunks func([]bool, overlapFunc) ([]engine.Chunk, []int, error)) ([]bool, []int, error) {
	_, first := firstOfEach(rows)
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback()
	stored := make([]bool, len(rows))
	now := time.Now().UnixMicro()
	for i, r := range rows {
		if !first[i] {
			continue
		}
		lo, hi := r.span(s.dialect)
		res, err := tx.ExecContext(ctx, `INSERT INTO batches (id, samples, stored_at, min_ts, max_ts) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, r.id, r.Samples, now, lo, hi)
		if err != nil {
			return nil, nil, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, nil, err
		}
		stored[i] = n > 0
	}
	if !slices.Contains(stored, true) {
		return stored, nil, nil
	}
	cs, already, err := chunks(stored, func(spans []engine.Span) ([]engine.StoredChunk, error) {
		var out []engine.StoredChunk
		for part := range slices.Chunk(spans, 500) { // SQLite binds 32,766 parameters at most
			args := make([]any, 0, 3*len(part))
			conds := make([]string, len(part))
			for i, sp := range part {
				args = append(args, sp.Device, s.dialect.ts(time.UnixMicro(sp.Lo)), s.dialect.ts(time.UnixMicro(sp.Hi)))
				conds[i] = "(gpu_id = ? AND max_ts >= ? AND min_ts <= ?)"
			}
			rows, err := tx.QueryContext(ctx, `SELECT gpu_id, data FROM chunks WHERE `+strings.Join(conds, " OR "), args...)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var c engine.StoredChunk
				if err := rows.Scan(&c.Device, &c.Data); err != nil {
					rows.Close()
					return nil, err
				}
				out = append(out, c)
			}
			if err := cmp.Or(rows.Err(), rows.Close()); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i, n := range already { // the batch's row counts what it stored
		if n > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE batches SET samples = samples - ? WHERE id = ?`, n, rows[i].id); err != nil {
				return nil, nil, err
			}
		}
	}
	if err := s.insertChunks(ctx, tx, cs); err != nil {
		return nil, nil, err
	}
	// Stamped as the transaction ends (write_postgres.go says why).
	ids := storedIDs(rows, stored)
	for part := range slices.Chunk(ids, 500) {
		args := append([]any{time.Now().UnixMicro()}, anySlice(part)...)
		if _, err := tx.ExecContext(ctx, `UPDATE batches SET stored_at = ? WHERE id IN (`+placeholders(len(part))+`)`, args...); err != nil {
			return nil, nil, err
		}
	}
	return stored, already, tx.Commit()
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// insertChunks writes chunks with multi-row INSERTs, sqliteChunk rows per statement: on
// SQLite for every batch, on either database when packing rows of the old layout.
func (s *Store) insertChunks(ctx context.Context, tx *sql.Tx, chunks []engine.Chunk) error {
	args := make([]any, 0, sqliteChunk*len(chunkColumns))
	var full *sql.Stmt
	for rows := range slices.Chunk(chunks, sqliteChunk) {
		args = args[:0]
		for _, c := range rows {
			args = append(args, c.Device, s.dialect.ts(time.UnixMicro(c.MinTS)), s.dialect.ts(time.UnixMicro(c.MaxTS)), c.Samples, c.Data, c.Sealed)
		}
		var err error
		if len(rows) == sqliteChunk {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, s.dialect.rebind(insertChunksSQL(sqliteChunk))); err != nil {
					return err
				}
				defer full.Close()
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, s.dialect.rebind(insertChunksSQL(len(rows))), args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func insertChunksSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO chunks (" + strings.Join(chunkColumns, ", ") + ") VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(" + placeholders(len(chunkColumns)) + ")")
	}
	return b.String()
}
