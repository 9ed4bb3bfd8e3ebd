package sqlstore

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

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
		var before engine.Stored
		if spans := engine.SpansOf(runs); len(spans) > 0 {
			found, err := overlapping(spans)
			if err != nil {
				return nil, nil, err
			}
			if before, err = engine.StoredAmong(runs, found); err != nil {
				return nil, nil, err
			}
		}
		hits := before.HoldsAny(runs) // before cutting, which drops repeats from the runs
		var out []engine.Chunk
		repeated := 0
		for _, run := range runs {
			var n int
			out, n = engine.Cut(run.Device, run.Points, out)
			repeated += n
		}
		if repeated == 0 && !hits {
			return out, make([]int, len(bs)), nil
		}
		// The slow way, batch by batch, so that the first wins and each batch learns how
		// many of its samples were left out.
		perBatch := make([][]engine.Run, len(bs))
		for i, b := range bs {
			if stored[i] {
				var err error
				if perBatch[i], err = groupByGPU([]telemetry.Batch{b}, gpuIDs, metricIDs); err != nil {
					return nil, nil, err
				}
			}
		}
		kept, already := engine.FirstWins(perBatch, before)
		out = out[:0]
		for _, run := range kept {
			out, _ = engine.Cut(run.Device, run.Points, out)
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

// overlapFunc reads, in a write's transaction, the chunks of each span's device that
// overlap the span, and others maybe: what the repeat rule (engine.StoredAmong) looks in.
type overlapFunc func(spans []engine.Span) ([]engine.StoredChunk, error)

// groupByGPU converts the batches' samples to points, grouped by GPU with a counting sort:
// two passes, one allocation for every point. Samples come in runs of one GPU and metric:
// only a change is looked up.
func groupByGPU(bs []telemetry.Batch, gpuIDs, metricIDs map[string]int32) ([]engine.Run, error) {
	n := 0
	for _, b := range bs {
		n += len(b.Samples)
	}
	runOf := make([]int32, n) // sample → index in runs
	runIndex := make(map[int32]int32)
	var runs []engine.Run
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
					runs, sizes = append(runs, engine.Run{Device: gid}), append(sizes, 0)
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
		runs[k].Points = all[:0:n]
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
		run.Points = append(run.Points, p)
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
