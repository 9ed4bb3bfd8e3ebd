package engine

// The repeat rule: a sample is stored once by device, metric, time and workload, and the
// first stored wins. A write reads the stored chunks overlapping its devices' spans
// (SpansOf), finds which of its points they hold (StoredAmong), and, when any is held or a
// point comes twice, keeps each batch's points that no earlier one holds (FirstWins).

import (
	"fmt"
	"slices"
)

// Key is a sample's identity: its device, metric, time and workload (a time-sliced GPU
// reports each metric once per pod, each pod's sample its own).
type Key struct {
	Device, Metric int32
	TS             int64
	Work           Workload
}

// KeyOf is a device's point's identity.
func KeyOf(device int32, p *Point) Key {
	k := Key{Device: device, Metric: p.Metric, TS: p.TS}
	if p.Work != nil {
		k.Work = *p.Work
	}
	return k
}

// Run is one device's points in a write, in the order they came.
type Run struct {
	Device int32
	Points []Point
}

// Span is a device and a time span, in microseconds, both ends in.
type Span struct {
	Device int32
	Lo, Hi int64
}

// StoredChunk is a stored chunk of a device.
type StoredChunk struct {
	Device int32
	Data   []byte
}

// SpansOf returns the span of each run's times: where its stored repeats can be.
func SpansOf(runs []Run) []Span {
	spans := make([]Span, 0, len(runs))
	for _, run := range runs {
		if len(run.Points) == 0 {
			continue
		}
		sp := Span{Device: run.Device, Lo: run.Points[0].TS, Hi: run.Points[0].TS}
		for _, p := range run.Points[1:] {
			sp.Lo, sp.Hi = min(sp.Lo, p.TS), max(sp.Hi, p.TS)
		}
		spans = append(spans, sp)
	}
	return spans
}

// Stored is the set of a write's points that are stored already.
type Stored map[Key]bool

// StoredAmong returns the points of chunks (those read for the runs' spans, and others
// maybe) at the times the runs hold, nil when there are none. Writers sending at once
// (Prometheus' shards) deliver a device's scrapes out of order, so the chunks overlapping a
// run's span usually hold its neighbours' times, not its own: only points at the run's own
// times are kept.
func StoredAmong(runs []Run, chunks []StoredChunk) (Stored, error) {
	if len(chunks) == 0 {
		return nil, nil
	}
	times := make(map[int32][]int64, len(runs)) // each device's distinct times, ascending
	for _, run := range runs {
		ts := times[run.Device]
		for _, p := range run.Points {
			ts = append(ts, p.TS)
		}
		times[run.Device] = ts
	}
	for device, ts := range times {
		slices.Sort(ts)
		times[device] = slices.Compact(ts)
	}
	var out Stored
	var pts []Point
	for _, c := range chunks {
		var err error
		if pts, err = Decode(c.Data, pts[:0]); err != nil {
			return nil, fmt.Errorf("read a stored chunk of device %d: %w", c.Device, err)
		}
		ts := times[c.Device]
		for i := range pts {
			if _, at := slices.BinarySearch(ts, pts[i].TS); at {
				if out == nil {
					out = Stored{}
				}
				out[KeyOf(c.Device, &pts[i])] = true
			}
		}
	}
	return out, nil
}

// HoldsAny reports whether a point of the runs is stored.
func (s Stored) HoldsAny(runs []Run) bool {
	if len(s) == 0 {
		return false
	}
	for _, run := range runs {
		for i := range run.Points {
			if s[KeyOf(run.Device, &run.Points[i])] {
				return true
			}
		}
	}
	return false
}

// FirstWins keeps the points of batches — each batch's runs, nil for a batch not written —
// that neither stored nor an earlier point of the write holds, as one run per device in the
// order devices first come, and counts each batch's points left out.
func FirstWins(batches [][]Run, stored Stored) (kept []Run, repeated []int) {
	repeated = make([]int, len(batches))
	seen := Stored{}
	index := map[int32]int{} // device → its run in kept
	for i, runs := range batches {
		for _, run := range runs {
			for _, p := range run.Points {
				k := KeyOf(run.Device, &p)
				if seen[k] || stored[k] {
					repeated[i]++
					continue
				}
				seen[k] = true
				at, ok := index[run.Device]
				if !ok {
					at = len(kept)
					index[run.Device] = at
					kept = append(kept, Run{Device: run.Device})
				}
				kept[at].Points = append(kept[at].Points, p)
			}
		}
	}
	return kept, repeated
}
