package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

var _ ports.SeriesReader = (*Store)(nil)

// seriesRows bounds the chunks one query of Series reads, so that its rows stay a few
// megabytes while a dashboard panel over a fleet is a few queries rather than one a device.
// A short window takes more devices per query, a long one fewer, down to 64: each query
// costs PostgreSQL a plan and a sort besides its rows (a fleet's last hour: 1.5 ms in one
// query of 247 devices, 3.6 ms in four of 64).
const seriesRows = 1024

// devicesPerQuery is how many devices one query of Series reads over w, from the chunks a
// device has there: a block per BlockSpan, one more at each end, and the open window's.
func devicesPerQuery(w window) int {
	if !w.hasLo || !w.hasHi {
		return 64
	}
	chunks := int((w.hi-w.lo)/engine.BlockSpan.Microseconds()) + 4
	return max(seriesRows/chunks, 64)
}

// Series implements ports.SeriesReader. The chunks of a group of devices come in one query,
// by device and start; each device's are decoded series by series (seriesReader), only the
// series of the metrics asked for.
func (s *Store) Series(ctx context.Context, q telemetry.SeriesQuery, fn func(telemetry.Series) error) error {
	var keep func(int32) bool
	if len(q.Metrics) > 0 {
		set, err := s.storedMetrics(ctx, q.Metrics)
		if err != nil || set == nil {
			return err
		}
		keep = func(m int32) bool { return set[m] }
	}
	found, err := s.lookupGPUIDs(ctx, q.GPUs)
	if err != nil {
		return err
	}
	keys := make(map[int32]string, len(found))
	var ids []int32
	for _, key := range q.GPUs {
		id, ok := found[key]
		if !ok {
			continue
		}
		if _, dup := keys[id]; !dup {
			keys[id] = key
			ids = append(ids, id)
		}
	}
	w := windowOf(q.Range)
	conds, args := s.windowConds(w, false)
	for group := range slices.Chunk(ids, devicesPerQuery(w)) {
		sqlText := `SELECT CAST(gpu_id AS BIGINT), data FROM chunks WHERE gpu_id IN (` + placeholders(len(group)) + `)` +
			conds + ` ORDER BY gpu_id, min_ts`
		r := seriesReader{s: s, window: w, keep: keep, fn: fn, transient: q.Transient}
		_, err := s.scanRound(ctx, sqlText, append(toAny(group), args...), func(id int64, data []byte) error {
			if id != r.device {
				if err := r.flush(ctx); err != nil {
					return err
				}
				r.device, r.key = id, keys[int32(id)]
			}
			return r.add(data)
		})
		if err == nil {
			err = r.flush(ctx)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// seriesReader gathers one device's series at a time from its chunks, in start order,
// decoding each series by series into its series. Where a device's chunks overlap (writes
// out of order, a late one), its series are sorted by time at the end, keeping the first
// read of each time as a scan does; where a metric of such a device also has several
// workloads, a sample may be in two of them, so the device is read again by a scan, which
// keeps each (time, metric) once.
type seriesReader struct {
	s      *Store
	window window
	keep   func(int32) bool
	fn     func(telemetry.Series) error
	// transient: fn keeps no points, so that their slices go back to pointSlices.
	transient bool

	device  int64 // the device being read, 0 before the first
	key     string
	series  map[int32][]*pendingSeries // by metric id
	dec     engine.SeriesDecoder
	chunks  int   // of the device read so far
	last    int64 // the latest time of the device's chunks so far
	overlap bool
}

// pendingSeries is a series being gathered, with the workload of its last points: runs of
// one workload in a chunk share one Workload.
type pendingSeries struct {
	work   engine.Workload
	last   *engine.Workload
	points []telemetry.Point
}

func (r *seriesReader) add(data []byte) error {
	if r.series == nil {
		r.series = map[int32][]*pendingSeries{}
	}
	first, last, err := r.dec.Decode(data, r.keep, r.addRun)
	if err != nil {
		return fmt.Errorf("chunk of device %d: %w", r.device, err)
	}
	if r.chunks > 0 && first <= r.last {
		r.overlap = true
	}
	r.chunks, r.last = r.chunks+1, max(r.last, last)
	return nil
}

// addRun appends a chunk's run of a series, within the window, to the series.
func (r *seriesReader) addRun(run engine.SeriesRun) {
	lo, hi := 0, len(run.TS)
	if r.window.hasLo {
		lo, _ = slices.BinarySearch(run.TS, r.window.lo)
	}
	if r.window.hasHi {
		hi, _ = slices.BinarySearch(run.TS, r.window.hi+1)
	}
	if lo >= hi {
		return
	}
	ps := r.pending(run.Metric, run.Work)
	if n := hi - lo; cap(ps.points)-len(ps.points) < n {
		// Room for the rest of the window at the run's spacing at once, rather than
		// append's doublings.
		more := n
		if r.window.hasHi && n > 1 {
			if spacing := (run.TS[hi-1] - run.TS[lo]) / int64(n-1); spacing > 0 {
				more += int(min((r.window.hi-run.TS[hi-1])/spacing, 1<<16))
			}
		}
		ps.points = slices.Grow(ps.points, more)
	}
	for i := lo; i < hi; i++ {
		ps.points = append(ps.points, telemetry.Point{Time: run.TS[i], Value: run.Values[i]})
	}
}

// pending returns the series of a metric and workload, making it the first time.
func (r *seriesReader) pending(metric int32, w *engine.Workload) *pendingSeries {
	var work engine.Workload // none and an empty one are the same series, as Samples tells them
	if w != nil {
		work = *w
	}
	for _, c := range r.series[metric] {
		if c.last == w || c.work == work {
			c.last = w
			return c
		}
	}
	ps := &pendingSeries{work: work, last: w}
	if r.transient {
		if reused, ok := pointSlices.Get().(*[]telemetry.Point); ok {
			ps.points = (*reused)[:0]
		}
	}
	r.series[metric] = append(r.series[metric], ps)
	return ps
}

// order puts the series of a device whose chunks overlap in time order.
func (r *seriesReader) order(ctx context.Context) error {
	for _, list := range r.series {
		if len(list) > 1 {
			return r.rescan(ctx)
		}
	}
	for _, list := range r.series {
		ps := list[0]
		if slices.IsSortedFunc(ps.points, byTime) {
			continue
		}
		slices.SortStableFunc(ps.points, byTime)
		ps.points = slices.CompactFunc(ps.points, func(a, b telemetry.Point) bool { return a.Time == b.Time })
	}
	return nil
}

func byTime(a, b telemetry.Point) int { return cmp.Compare(a.Time, b.Time) }

// rescan reads the device again through a scan, merged in time order.
func (r *seriesReader) rescan(ctx context.Context) error {
	clear(r.series)
	req := scanRequest{gpu: int32(r.device), window: r.window}
	if r.keep != nil {
		req.keep = func(p *engine.Point) bool { return r.keep(p.Metric) }
	}
	return r.s.scanRuns(ctx, req, func(run []engine.Point) error {
		for i := range run {
			p := &run[i]
			ps := r.pending(p.Metric, p.Work)
			ps.points = append(ps.points, telemetry.Point{Time: p.TS, Value: p.Value})
		}
		return nil
	})
}

// flush hands the device's series to fn, by metric name, then workload.
func (r *seriesReader) flush(ctx context.Context) error {
	if r.chunks == 0 {
		return nil
	}
	defer func() { r.chunks, r.last, r.overlap = 0, 0, false }()
	if r.overlap {
		if err := r.order(ctx); err != nil {
			return err
		}
	}
	var out []telemetry.Series
	for id, list := range r.series {
		name, err := r.s.metricName(ctx, id)
		if err != nil {
			return err
		}
		for _, ps := range list {
			if len(ps.points) > 0 {
				out = append(out, telemetry.Series{GPU: r.key, Metric: name, Container: ps.work.Container, Pod: ps.work.Pod,
					Namespace: ps.work.Namespace, Points: ps.points})
			}
		}
	}
	clear(r.series)
	slices.SortFunc(out, func(a, b telemetry.Series) int {
		return cmp.Or(cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Pod, b.Pod), cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Container, b.Container))
	})
	for _, series := range out {
		if err := r.fn(series); err != nil {
			return err
		}
		if r.transient && cap(series.Points) <= maxReusedPoints {
			pointSlices.Put(&series.Points)
		}
	}
	return nil
}

// pointSlices are the series slices of transient reads, reused: a day of a GPU's ten
// metrics decoded into fresh slices for each aggregation is ~1.4 MB, whose allocation and
// zeroing were a quarter of the request's CPU.
var pointSlices sync.Pool

// maxReusedPoints bounds what pointSlices keeps: a slice of a long window is let go.
const maxReusedPoints = 1 << 16
