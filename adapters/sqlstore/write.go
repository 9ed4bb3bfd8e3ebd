package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm/clause"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// gpuRow is a row of the gpus table: a device.
type gpuRow struct {
	ID                 int32  `gorm:"primaryKey"`
	UUID               string `gorm:"column:uuid"`
	GPUInstance        string `gorm:"column:gpu_instance"`
	GPUInstanceProfile string `gorm:"column:gpu_instance_profile"`
	Hostname           string
	GPUIndex           int `gorm:"column:gpu_index"`
	Device             string
	ModelName          string
	DriverVersion      string
	PCIBusID           string `gorm:"column:pci_bus_id"`
	Labels             string // a JSON object, keys sorted: rows compare as strings
	IDFrom             string `gorm:"column:id_from"`
	HostnameLabel      string `gorm:"column:hostname_label"`
}

func (gpuRow) TableName() string { return "gpus" }

func (r gpuRow) key() string { return telemetry.DeviceKey(r.UUID, r.GPUInstance) }

func toGPURow(g telemetry.GPU) gpuRow {
	labels := []byte("{}")
	if len(g.Labels) > 0 {
		labels, _ = json.Marshal(g.Labels) // a map of strings always encodes
	}
	return gpuRow{UUID: g.UUID, GPUInstance: g.Instance, GPUInstanceProfile: g.InstanceProfile,
		Hostname: g.Hostname, GPUIndex: g.Index, Device: g.Device, ModelName: g.ModelName,
		DriverVersion: g.DriverVersion, PCIBusID: g.PCIBusID, Labels: string(labels), IDFrom: g.IDFrom, HostnameLabel: g.HostnameLabel}
}

// fromGPURow is toGPURow reversed; labels that are not a JSON object of strings (edited by
// hand, say) are left out.
func fromGPURow(r gpuRow) telemetry.GPU {
	g := telemetry.GPU{UUID: r.UUID, IDFrom: r.IDFrom, HostnameLabel: r.HostnameLabel, Instance: r.GPUInstance, InstanceProfile: r.GPUInstanceProfile,
		Hostname: r.Hostname, Index: r.GPUIndex, Device: r.Device, ModelName: r.ModelName,
		DriverVersion: r.DriverVersion, PCIBusID: r.PCIBusID}
	if r.Labels != "" && r.Labels != "{}" {
		_ = json.Unmarshal([]byte(r.Labels), &g.Labels)
	}
	return g
}

// metricRow is a row of the metrics table.
type metricRow struct {
	ID   int32 `gorm:"primaryKey"`
	Name string
}

func (metricRow) TableName() string { return "metrics" }

// WriteBatch implements ports.BatchWriter: WriteBatches of one batch.
func (s *Store) WriteBatch(ctx context.Context, b telemetry.Batch) (bool, error) {
	written, err := s.WriteBatches(ctx, []telemetry.Batch{b})
	if err != nil {
		return false, err
	}
	return written[0].Stored, nil
}

// WriteBatches implements ports.BatchWriter. GPUs, metric names and which GPU reports which
// metric are registered first, each idempotently; then, in one transaction, the batches' IDs
// are recorded and the samples of those not stored before are packed into chunks, one run
// per GPU across the batches: a group of small batches writes as few rows as one big one.
// Samples stored before are found by reading, in the same transaction, the chunks of the
// batches' GPUs that overlap their time span: live telemetry, newer than anything stored,
// finds none, and costs one index probe per GPU.
func (s *Store) WriteBatches(ctx context.Context, bs []telemetry.Batch) ([]telemetry.Written, error) {
	if len(bs) == 0 {
		return nil, nil
	}
	for _, b := range bs {
		if b.ID == "" {
			return nil, telemetry.Invalid("batch.id", "is empty")
		}
	}
	if err := checkText(bs); err != nil {
		return nil, err
	}
	var gpus []telemetry.GPU
	for _, b := range bs {
		gpus = append(gpus, b.GPUs...)
	}
	gpuIDs, err := s.gpuIDs(ctx, gpus)
	if err != nil {
		return nil, classify(fmt.Errorf("register GPUs: %w", err))
	}
	metricIDs, err := s.metricIDs(ctx, bs)
	if err != nil {
		return nil, classify(fmt.Errorf("register metrics: %w", err))
	}
	runs, err := groupByGPU(bs, gpuIDs, metricIDs)
	if err != nil {
		return nil, err
	}
	if err := s.registerPairs(ctx, runs); err != nil {
		return nil, classify(fmt.Errorf("register GPU metrics: %w", err))
	}
	rows := make([]batchRow, len(bs))
	for i, b := range bs {
		rows[i] = batchRow{id: b.ID, Samples: len(b.Samples)}
		for k, smp := range b.Samples {
			ts := smp.Time.UnixMicro()
			if k == 0 {
				rows[i].MinTS, rows[i].MaxTS = ts, ts
			}
			rows[i].MinTS, rows[i].MaxTS = min(rows[i].MinTS, ts), max(rows[i].MaxTS, ts)
		}
	}
	// The chunks of the batches found new, cut once their IDs are recorded, without the
	// samples stored before; the runs made above serve when every batch is new and nothing
	// is stored twice, as is usual.
	chunks := func(stored []bool, overlapping overlapFunc) ([]engine.Chunk, []int, error) {
		if slices.Contains(stored, false) {
			var fresh []telemetry.Batch
			for i, b := range bs {
				if stored[i] {
					fresh = append(fresh, b)
				}
			}
			var err error
			if runs, err = groupByGPU(fresh, gpuIDs, metricIDs); err != nil {
				return nil, nil, err
			}
		}
		before, err := storedPoints(runs, overlapping)
		if err != nil {
			return nil, nil, err
		}
		hits := holdsAny(runs, before) // before cutting, which drops repeats from the runs
		var out []engine.Chunk
		repeated := 0
		for _, run := range runs {
			var n int
			out, n = engine.Cut(run.gpu, run.pts, out)
			repeated += n
		}
		already := make([]int, len(bs))
		if repeated == 0 && !hits {
			return out, already, nil
		}
		// The slow way, sample by sample and batch by batch, so that the first wins and each
		// batch learns how many of its samples were left out.
		kept := telemetry.Batch{ID: bs[0].ID}
		seen := make(map[pointKey]bool)
		for i, b := range bs {
			if !stored[i] {
				continue
			}
			kept.GPUs = append(kept.GPUs, b.GPUs...)
			for _, smp := range b.Samples {
				k := pointKey{gpu: gpuIDs[smp.GPU], metric: metricIDs[smp.Metric], ts: smp.Time.UnixMicro(),
					work: engine.Workload{Container: smp.Container, Pod: smp.Pod, Namespace: smp.Namespace}}
				if seen[k] || before[k] {
					already[i]++
					continue
				}
				seen[k] = true
				kept.Samples = append(kept.Samples, smp)
			}
		}
		if runs, err = groupByGPU([]telemetry.Batch{kept}, gpuIDs, metricIDs); err != nil {
			return nil, nil, err
		}
		out = out[:0]
		for _, run := range runs {
			out, _ = engine.Cut(run.gpu, run.pts, out)
		}
		return out, already, nil
	}
	var (
		stored  []bool
		already []int
	)
	if s.dialect.name == "postgres" {
		stored, already, err = s.copyBatches(ctx, rows, chunks)
	} else {
		stored, already, err = s.insertBatches(ctx, rows, chunks)
	}
	if err != nil {
		return nil, classify(fmt.Errorf("write batch %s: %w", bs[0].ID, err))
	}
	written := make([]telemetry.Written, len(bs))
	for i := range bs {
		written[i].Stored = stored[i]
		if already != nil {
			written[i].AlreadyStored = already[i]
		}
	}
	return written, nil
}

// pointKey is a sample's identity: its device, metric, time and workload (a time-sliced
// GPU reports each metric once per pod, each pod's sample its own).
type pointKey struct {
	gpu, metric int32
	ts          int64
	work        engine.Workload
}

// keyOf is a stored point's identity.
func keyOf(gpu int32, p *engine.Point) pointKey {
	k := pointKey{gpu: gpu, metric: p.Metric, ts: p.TS}
	if p.Work != nil {
		k.work = *p.Work
	}
	return k
}

// storedChunk is a stored chunk of a GPU.
type storedChunk struct {
	gpu  int32
	data []byte
}

// overlapFunc reads, in a write's transaction, the chunks of each span's GPU that overlap the
// span, and others maybe.
type overlapFunc func(spans []gpuSpan) ([]storedChunk, error)

// gpuSpan is a GPU and a time span, in microseconds, both ends in.
type gpuSpan struct {
	gpu    int32
	lo, hi int64
}

// storedPoints returns the points already stored at the times the runs hold, nil when there
// are none (the chunks read hold only other times, or there are no such chunks). Writers
// sending at once (Prometheus' shards) deliver a device's scrapes out of order, so the
// chunks overlapping a run's span usually hold its neighbours' times, not its own: only
// points at the run's own times are kept.
func storedPoints(runs []gpuRun, overlapping overlapFunc) (map[pointKey]bool, error) {
	spans := make([]gpuSpan, 0, len(runs))
	times := make(map[int32][]int64, len(runs)) // each run's distinct times, ascending
	for _, run := range runs {
		if len(run.pts) == 0 {
			continue
		}
		ts := make([]int64, len(run.pts))
		for i, p := range run.pts {
			ts[i] = p.TS
		}
		slices.Sort(ts)
		ts = slices.Compact(ts)
		times[run.gpu] = ts
		spans = append(spans, gpuSpan{run.gpu, ts[0], ts[len(ts)-1]})
	}
	if len(spans) == 0 {
		return nil, nil
	}
	chunks, err := overlapping(spans)
	if err != nil || len(chunks) == 0 {
		return nil, err
	}
	var out map[pointKey]bool
	var pts []engine.Point
	for _, c := range chunks {
		if pts, err = engine.Decode(c.data, pts[:0]); err != nil {
			return nil, fmt.Errorf("read a stored chunk of GPU %d: %w", c.gpu, err)
		}
		ts := times[c.gpu]
		for _, p := range pts {
			if _, at := slices.BinarySearch(ts, p.TS); at {
				if out == nil {
					out = map[pointKey]bool{}
				}
				out[keyOf(c.gpu, &p)] = true
			}
		}
	}
	return out, nil
}

// holdsAny reports whether a point of the runs is among the stored ones.
func holdsAny(runs []gpuRun, stored map[pointKey]bool) bool {
	if len(stored) == 0 {
		return false
	}
	for _, run := range runs {
		for _, p := range run.pts {
			if stored[keyOf(run.gpu, &p)] {
				return true
			}
		}
	}
	return false
}

// checkText refuses, before anything is written, text that one database or the other cannot
// keep alike (PostgreSQL refuses NUL and invalid UTF-8, SQLite stores them): each distinct
// device, metric name and workload is checked once.
func checkText(bs []telemetry.Batch) error {
	for _, b := range bs {
		for _, g := range b.GPUs {
			if err := g.Validate(); err != nil {
				return fmt.Errorf("GPU %q: %w", g.Key(), err)
			}
		}
	}
	// Samples come in runs of one metric and workload: only a change is looked up.
	seen := map[string]bool{}
	works := map[engine.Workload]bool{}
	var metric string
	var work engine.Workload
	for i, smp := range allSamples(bs) {
		if (i == 0 || smp.Metric != metric) && !seen[smp.Metric] {
			seen[smp.Metric] = true
			if err := telemetry.CheckText("metric_name", smp.Metric, telemetry.MaxNameLen); err != nil {
				return err
			}
		}
		metric = smp.Metric
		w := engine.Workload{Container: smp.Container, Pod: smp.Pod, Namespace: smp.Namespace}
		if w != work && w != (engine.Workload{}) && !works[w] {
			works[w] = true
			for _, f := range []struct{ field, value string }{{"container", w.Container}, {"pod", w.Pod}, {"namespace", w.Namespace}} {
				if err := telemetry.CheckText(f.field, f.value, telemetry.MaxTextLen); err != nil {
					return err
				}
			}
		}
		work = w
	}
	return nil
}

// gpuRun is one GPU's points in a batch.
type gpuRun struct {
	gpu int32
	pts []engine.Point
}

// groupByGPU converts the batches' samples to points, grouped by GPU with a counting sort:
// two passes, one allocation for every point. Samples come in runs of one GPU and metric:
// only a change is looked up.
func groupByGPU(bs []telemetry.Batch, gpuIDs, metricIDs map[string]int32) ([]gpuRun, error) {
	n := 0
	for _, b := range bs {
		n += len(b.Samples)
	}
	runOf := make([]int32, n) // sample → index in runs
	runIndex := make(map[int32]int32)
	var runs []gpuRun
	var sizes []int
	var gpu string
	k := int32(-1)
	i := 0
	for _, b := range bs {
		for _, smp := range b.Samples {
			if k < 0 || smp.GPU != gpu {
				gid, ok := gpuIDs[smp.GPU]
				if !ok {
					return nil, telemetry.Invalid("uuid", "sample's GPU %s is not described in batch %s", smp.GPU, b.ID)
				}
				if k, ok = runIndex[gid]; !ok {
					k = int32(len(runs))
					runIndex[gid] = k
					runs, sizes = append(runs, gpuRun{gpu: gid}), append(sizes, 0)
				}
				gpu = smp.GPU
			}
			runOf[i] = k
			sizes[k]++
			i++
		}
	}
	all := make([]engine.Point, n)
	for k, n := range sizes {
		runs[k].pts = all[:0:n]
		all = all[n:]
	}
	works := map[engine.Workload]*engine.Workload{}
	var metric string
	var metricID int32
	for i, smp := range allSamples(bs) {
		if i == 0 || smp.Metric != metric {
			metric, metricID = smp.Metric, metricIDs[smp.Metric]
		}
		p := engine.Point{TS: smp.Time.UnixMicro(), Metric: metricID, Value: smp.Value}
		if w := (engine.Workload{Container: smp.Container, Pod: smp.Pod, Namespace: smp.Namespace}); w != (engine.Workload{}) {
			if works[w] == nil {
				works[w] = &w
			}
			p.Work = works[w]
		}
		run := &runs[runOf[i]]
		run.pts = append(run.pts, p)
	}
	return runs, nil
}

// allSamples yields the samples of the batches in order, numbered from 0.
func allSamples(bs []telemetry.Batch) iter.Seq2[int, *telemetry.Sample] {
	return func(yield func(int, *telemetry.Sample) bool) {
		i := 0
		for _, b := range bs {
			for k := range b.Samples {
				if !yield(i, &b.Samples[k]) {
					return
				}
				i++
			}
		}
	}
}

// batchRow is one batch's row in batches, with the time span of its samples (meaningless
// when it has none).
type batchRow struct {
	id           string
	Samples      int
	MinTS, MaxTS int64
}

// span returns the batch's time span as column values, NULL for an empty batch.
func (b batchRow) span(d dialect) (lo, hi any) {
	if b.Samples == 0 {
		return nil, nil
	}
	return d.ts(time.UnixMicro(b.MinTS)), d.ts(time.UnixMicro(b.MaxTS))
}

var chunkColumns = []string{"gpu_id", "min_ts", "max_ts", "samples", "data", "sealed"}

// firstOfEach marks which batches are the first with their ID: a later one with the same ID
// is a duplicate whatever the database holds.
func firstOfEach(rows []batchRow) (map[string]int, []bool) {
	index := make(map[string]int, len(rows))
	first := make([]bool, len(rows))
	for i, r := range rows {
		if _, dup := index[r.id]; !dup {
			index[r.id], first[i] = i, true
		}
	}
	return index, first
}

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
			cs, already, err = chunks(stored, func(spans []gpuSpan) ([]storedChunk, error) {
				// Each GPU's own span, not the batches': a batch of the next scrape would
				// otherwise find every device's chunk of the last one.
				gpus, los, his := make([]int32, len(spans)), make([]time.Time, len(spans)), make([]time.Time, len(spans))
				first := spans[0].lo
				for i, sp := range spans {
					gpus[i], los[i], his[i] = sp.gpu, time.UnixMicro(sp.lo), time.UnixMicro(sp.hi)
					first = min(first, sp.lo)
				}
				rows, err := tx.Query(ctx, `SELECT c.gpu_id, c.data
					FROM unnest($1::int4[], $2::timestamptz[], $3::timestamptz[]) AS s(gpu_id, lo, hi)
					JOIN chunks c ON c.gpu_id = s.gpu_id AND c.max_ts >= s.lo AND c.min_ts <= s.hi
					WHERE c.max_ts >= $4`, gpus, los, his, time.UnixMicro(first))
				if err != nil {
					return nil, err
				}
				return pgx.CollectRows(rows, func(r pgx.CollectableRow) (storedChunk, error) {
					var c storedChunk
					err := r.Scan(&c.gpu, &c.data)
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
	cs, already, err := chunks(stored, func(spans []gpuSpan) ([]storedChunk, error) {
		var out []storedChunk
		for part := range slices.Chunk(spans, 500) { // SQLite binds 32,766 parameters at most
			args := make([]any, 0, 3*len(part))
			conds := make([]string, len(part))
			for i, sp := range part {
				args = append(args, sp.gpu, s.dialect.ts(time.UnixMicro(sp.lo)), s.dialect.ts(time.UnixMicro(sp.hi)))
				conds[i] = "(gpu_id = ? AND max_ts >= ? AND min_ts <= ?)"
			}
			rows, err := tx.QueryContext(ctx, `SELECT gpu_id, data FROM chunks WHERE `+strings.Join(conds, " OR "), args...)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var c storedChunk
				if err := rows.Scan(&c.gpu, &c.data); err != nil {
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
	return stored, already, tx.Commit()
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

// registerPairs records which device reports which metric (gpus.metric_ids), so that the
// latest value of each is found without reading a device's whole history. Known pairs cost
// no query; a device's new metrics are added to its row in one statement, whatever other
// writers add at the same time.
func (s *Store) registerPairs(ctx context.Context, runs []gpuRun) error {
	var distinct []metricPair
	seen := map[int32]bool{}
	for _, run := range runs {
		clear(seen)
		for _, p := range run.pts {
			if !seen[p.Metric] {
				seen[p.Metric] = true
				distinct = append(distinct, metricPair{run.gpu, p.Metric})
			}
		}
	}
	s.mu.Lock()
	missing := slices.DeleteFunc(distinct, func(pair metricPair) bool { return s.pairs[pair] })
	s.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	slices.SortFunc(missing, func(a, b metricPair) int { return cmp.Or(cmp.Compare(a.gpu, b.gpu), cmp.Compare(a.metric, b.metric)) })
	type added struct {
		gpu     int32
		metrics []int32
	}
	var devices []added
	for _, pair := range missing {
		if n := len(devices); n > 0 && devices[n-1].gpu == pair.gpu {
			devices[n-1].metrics = append(devices[n-1].metrics, pair.metric)
		} else {
			devices = append(devices, added{pair.gpu, []int32{pair.metric}})
		}
	}
	err := inChunks(devices, func(part []added) error {
		if s.dialect.name == "sqlite" {
			for _, d := range part {
				ids, _ := json.Marshal(d.metrics)
				if err := s.db.WithContext(ctx).Exec(`UPDATE gpus SET metric_ids = (SELECT json_group_array(value) FROM
					(SELECT value FROM json_each(gpus.metric_ids) UNION SELECT value FROM json_each(?) ORDER BY value)) WHERE id = ?`,
					string(ids), d.gpu).Error; err != nil {
					return err
				}
			}
			return nil
		}
		values, args := make([]string, len(part)), make([]any, 0, 2*len(part))
		for i, d := range part {
			// The ids as an array literal: GORM would expand a slice into a row.
			ids := make([]string, len(d.metrics))
			for k, m := range d.metrics {
				ids[k] = strconv.Itoa(int(m))
			}
			values[i] = "(?::integer, ?::integer[])"
			args = append(args, d.gpu, "{"+strings.Join(ids, ",")+"}")
		}
		return s.db.WithContext(ctx).Exec(`UPDATE gpus AS g SET metric_ids =
			(SELECT array_agg(DISTINCT x ORDER BY x) FROM unnest(g.metric_ids || v.ids) AS x)
			FROM (VALUES `+strings.Join(values, ", ")+`) AS v(id, ids) WHERE g.id = v.id AND NOT g.metric_ids @> v.ids`, args...).Error
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pair := range missing {
		s.pairs[pair] = true
	}
	return nil
}

// metricPair is a device and a metric it reports.
type metricPair struct{ gpu, metric int32 }

// gpuIDs returns the surrogate key of each GPU, registering new GPUs and updating those whose
// metadata changed. Known, unchanged GPUs cost no query.
func (s *Store) gpuIDs(ctx context.Context, gpus []telemetry.GPU) (map[string]int32, error) {
	ids := make(map[string]int32, len(gpus))
	var upsert []gpuRow
	s.mu.Lock()
	for _, g := range gpus {
		key := g.Key()
		if known, ok := s.gpus[key]; ok && known.gpu.Equal(g) {
			ids[key] = known.id
			continue
		}
		upsert = append(upsert, toGPURow(g))
	}
	s.mu.Unlock()
	if len(upsert) == 0 {
		return ids, nil
	}
	// A stable order keeps concurrent collectors from deadlocking on each other's rows.
	slices.SortFunc(upsert, func(a, b gpuRow) int {
		return cmp.Or(strings.Compare(a.UUID, b.UUID), strings.Compare(a.GPUInstance, b.GPUInstance))
	})
	upsert = slices.CompactFunc(upsert, func(a, b gpuRow) bool { return a.key() == b.key() })
	err := inChunks(upsert, func(part []gpuRow) error {
		return s.db.WithContext(ctx).Clauses(
			clause.OnConflict{
				Columns: []clause.Column{{Name: "uuid"}, {Name: "gpu_instance"}},
				DoUpdates: clause.AssignmentColumns([]string{"gpu_instance_profile", "hostname", "gpu_index", "device",
					"model_name", "driver_version", "pci_bus_id", "labels", "id_from", "hostname_label"}),
			},
			clause.Returning{Columns: []clause.Column{{Name: "id"}, {Name: "uuid"}, {Name: "gpu_instance"}}},
		).Create(&part).Error // fills in part's IDs, and so upsert's
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, row := range upsert {
		if row.ID == 0 {
			return nil, errors.New("database returned no id for GPU " + row.key())
		}
		s.gpus[row.key()] = knownGPU{id: row.ID, gpu: fromGPURow(row)}
		ids[row.key()] = row.ID
	}
	return ids, nil
}

// inChunks calls insert on rows 1,000 at a time: one INSERT of many rows binds a parameter
// per column and row, and PostgreSQL takes 65,535 parameters at most (a group commit of
// batches from a large fleet registers tens of thousands of GPUs at once).
func inChunks[T any](rows []T, insert func([]T) error) error {
	for part := range slices.Chunk(rows, 1000) {
		if err := insert(part); err != nil {
			return err
		}
	}
	return nil
}

// knownGPU is a registered device: its surrogate key and the description stored with it.
type knownGPU struct {
	id  int32
	gpu telemetry.GPU
}

// metricIDs returns the surrogate key of each metric name in the batches, registering new
// names.
func (s *Store) metricIDs(ctx context.Context, bs []telemetry.Batch) (map[string]int32, error) {
	ids := make(map[string]int32)
	var missing []metricRow
	s.mu.Lock()
	var last string
	for i, smp := range allSamples(bs) {
		if i > 0 && smp.Metric == last {
			continue
		}
		last = smp.Metric
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
	err := inChunks(missing, func(part []metricRow) error {
		return s.db.WithContext(ctx).Clauses(
			clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, DoUpdates: clause.AssignmentColumns([]string{"name"})},
			clause.Returning{Columns: []clause.Column{{Name: "id"}, {Name: "name"}}},
		).Create(&part).Error
	})
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
		s.names[row.ID] = row.Name
		ids[row.Name] = row.ID
	}
	return ids, nil
}
