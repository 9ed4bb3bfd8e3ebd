package sqlstore

// The repeat rule: a sample is stored once by device, metric, time and workload, the first
// stored winning; a write leaves out what is already stored.

import (
	"fmt"
	"slices"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
)

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
