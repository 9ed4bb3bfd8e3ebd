package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm/clause"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// gpuRow is a row of the gpus table.
type gpuRow struct {
	ID            int32  `gorm:"primaryKey"`
	UUID          string `gorm:"column:uuid"`
	Hostname      string
	GPUIndex      int `gorm:"column:gpu_index"`
	Device        string
	ModelName     string
	DriverVersion string
}

func (gpuRow) TableName() string { return "gpus" }

func toGPURow(g telemetry.GPU) gpuRow {
	return gpuRow{UUID: g.UUID, Hostname: g.Hostname, GPUIndex: g.Index, Device: g.Device,
		ModelName: g.ModelName, DriverVersion: g.DriverVersion}
}

// metricRow is a row of the metrics table.
type metricRow struct {
	ID   int32 `gorm:"primaryKey"`
	Name string
}

func (metricRow) TableName() string { return "metrics" }

// WriteBatch implements ports.BatchWriter. GPUs and metric names are registered first, each
// idempotently, then the batch's ID and samples are written in one transaction.
func (s *Store) WriteBatch(ctx context.Context, b telemetry.Batch) (bool, error) {
	if b.ID == "" {
		return false, telemetry.Invalid("batch.id", "is empty")
	}
	gpuIDs, err := s.gpuIDs(ctx, b.GPUs)
	if err != nil {
		return false, classify(fmt.Errorf("register GPUs: %w", err))
	}
	metricIDs, err := s.metricIDs(ctx, b.Samples)
	if err != nil {
		return false, classify(fmt.Errorf("register metrics: %w", err))
	}
	rows := make([]sampleRow, len(b.Samples))
	for i, smp := range b.Samples {
		gid, ok := gpuIDs[smp.GPU]
		if !ok {
			return false, telemetry.Invalid("uuid", "sample's GPU %s is not described in batch %s", smp.GPU, b.ID)
		}
		rows[i] = sampleRow{gpu: gid, metric: metricIDs[smp.Metric], ts: smp.Time, value: smp.Value,
			container: nullable(smp.Container), pod: nullable(smp.Pod), namespace: nullable(smp.Namespace)}
	}
	var stored bool
	if s.dialect.name == "postgres" {
		stored, err = s.copyBatch(ctx, b.ID, rows)
	} else {
		stored, err = s.insertBatch(ctx, b.ID, rows)
	}
	if err != nil {
		return false, classify(fmt.Errorf("write batch %s: %w", b.ID, err))
	}
	return stored, nil
}

// sampleRow is a row of the samples table; empty workload names are stored as NULL.
type sampleRow struct {
	gpu, metric               int32
	ts                        time.Time
	value                     float64
	container, pod, namespace *string
}

// span returns the oldest and newest sample times, nil for an empty batch.
func span(rows []sampleRow) (lo, hi *time.Time) {
	if len(rows) == 0 {
		return nil, nil
	}
	min, max := rows[0].ts, rows[0].ts
	for _, r := range rows[1:] {
		if r.ts.Before(min) {
			min = r.ts
		}
		if r.ts.After(max) {
			max = r.ts
		}
	}
	return &min, &max
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

var sampleColumns = []string{"gpu_id", "metric_id", "ts", "value", "container", "pod", "namespace"}

// copyBatch writes a batch on PostgreSQL: the batch row, then the samples with COPY, in one
// transaction on a pgx connection taken from the pool.
func (s *Store) copyBatch(ctx context.Context, id string, rows []sampleRow) (stored bool, err error) {
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	err = conn.Raw(func(driverConn any) error {
		pc := driverConn.(*stdlib.Conn).Conn()
		return pgx.BeginFunc(ctx, pc, func(tx pgx.Tx) error {
			lo, hi := span(rows)
			tag, err := tx.Exec(ctx, `INSERT INTO batches (id, samples, min_ts, max_ts) VALUES ($1, $2, $3, $4)
				ON CONFLICT (id) DO NOTHING`, id, len(rows), lo, hi)
			if err != nil || tag.RowsAffected() == 0 {
				return err // a nil error here means the batch was stored before
			}
			stored = true
			_, err = tx.CopyFrom(ctx, pgx.Identifier{"samples"}, sampleColumns,
				pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
					r := &rows[i]
					return []any{r.gpu, r.metric, r.ts, r.value, r.container, r.pod, r.namespace}, nil
				}))
			return err
		})
	})
	if err != nil {
		return false, err
	}
	return stored, nil
}

// sqliteChunk is how many samples one INSERT statement carries. The pure-Go driver matches
// each bound parameter against the argument list one by one, so a statement's cost grows
// with the square of its parameters: 64 rows (448 parameters) measured about 15 % faster
// than 256.
const sqliteChunk = 64

// insertBatch writes a batch on SQLite with multi-row INSERTs in one transaction.
func (s *Store) insertBatch(ctx context.Context, id string, rows []sampleRow) (bool, error) {
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	lo, hi := span(rows)
	var loArg, hiArg any
	if lo != nil {
		loArg, hiArg = lo.UnixMicro(), hi.UnixMicro()
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO batches (id, samples, stored_at, min_ts, max_ts) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, id, len(rows), time.Now().UnixMicro(), loArg, hiArg)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	args := make([]any, 0, sqliteChunk*len(sampleColumns))
	var full *sql.Stmt
	for chunk := range slices.Chunk(rows, sqliteChunk) {
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r.gpu, r.metric, r.ts.UnixMicro(), r.value, r.container, r.pod, r.namespace)
		}
		if len(chunk) == sqliteChunk {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, insertSamplesSQL(sqliteChunk)); err != nil {
					return false, err
				}
				defer full.Close()
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertSamplesSQL(len(chunk)), args...)
		}
		if err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}

func insertSamplesSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO samples (" + strings.Join(sampleColumns, ", ") + ") VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?)")
	}
	return b.String()
}

// gpuIDs returns the surrogate key of each GPU, registering new GPUs and updating those whose
// metadata changed. Known, unchanged GPUs cost no query.
func (s *Store) gpuIDs(ctx context.Context, gpus []telemetry.GPU) (map[string]int32, error) {
	ids := make(map[string]int32, len(gpus))
	var upsert []gpuRow
	s.mu.Lock()
	for _, g := range gpus {
		row := toGPURow(g)
		if known, ok := s.gpus[g.UUID]; ok && sameGPU(known, row) {
			ids[g.UUID] = known.ID
			continue
		}
		upsert = append(upsert, row)
	}
	s.mu.Unlock()
	if len(upsert) == 0 {
		return ids, nil
	}
	// A stable order keeps concurrent collectors from deadlocking on each other's rows.
	slices.SortFunc(upsert, func(a, b gpuRow) int { return strings.Compare(a.UUID, b.UUID) })
	upsert = slices.CompactFunc(upsert, func(a, b gpuRow) bool { return a.UUID == b.UUID })
	err := s.db.WithContext(ctx).Clauses(
		clause.OnConflict{
			Columns:   []clause.Column{{Name: "uuid"}},
			DoUpdates: clause.AssignmentColumns([]string{"hostname", "gpu_index", "device", "model_name", "driver_version"}),
		},
		clause.Returning{Columns: []clause.Column{{Name: "id"}, {Name: "uuid"}}},
	).Create(&upsert).Error
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, row := range upsert {
		if row.ID == 0 {
			return nil, errors.New("database returned no id for GPU " + row.UUID)
		}
		s.gpus[row.UUID] = row
		ids[row.UUID] = row.ID
	}
	return ids, nil
}

func sameGPU(a, b gpuRow) bool {
	a.ID = 0
	return a == b
}

// metricIDs returns the surrogate key of each metric name in samples, registering new names.
func (s *Store) metricIDs(ctx context.Context, samples []telemetry.Sample) (map[string]int32, error) {
	ids := make(map[string]int32)
	var missing []metricRow
	s.mu.Lock()
	for _, smp := range samples {
		if _, done := ids[smp.Metric]; done {
			continue
		}
		if id, ok := s.metrics[smp.Metric]; ok {
			ids[smp.Metric] = id
			continue
		}
		ids[smp.Metric] = 0
		missing = append(missing, metricRow{Name: smp.Metric})
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return ids, nil
	}
	slices.SortFunc(missing, func(a, b metricRow) int { return strings.Compare(a.Name, b.Name) })
	err := s.db.WithContext(ctx).Clauses(
		clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, DoUpdates: clause.AssignmentColumns([]string{"name"})},
		clause.Returning{Columns: []clause.Column{{Name: "id"}, {Name: "name"}}},
	).Create(&missing).Error
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, row := range missing {
		if row.ID == 0 {
			return nil, errors.New("database returned no id for metric " + row.Name)
		}
		s.metrics[row.Name] = row.ID
		ids[row.Name] = row.ID
	}
	return ids, nil
}
