package engine

import (
	"cmp"
	"encoding/binary"
	"math"
)

// SeriesRun is one series' points in one chunk: a metric with its workload, and its times
// and values in time order.
type SeriesRun struct {
	Metric int32
	Work   *Workload
	TS     []int64
	Values []float64
}

// SeriesDecoder decodes chunks series by series, for readers that want series rather than
// points in time order (a PromQL query). It reuses its buffers from chunk to chunk.
type SeriesDecoder struct {
	layout blockLayout
	ts     []int64
	values []float64
	points []Point
}

// Decode calls fn with each series of a chunk whose metric keep accepts (every one when
// nil); the run's slices are valid until fn returns. first and last are the chunk's first
// and last times, of whichever metric.
func (d *SeriesDecoder) Decode(data []byte, keep func(metric int32) bool, fn func(SeriesRun)) (first, last int64, err error) {
	if len(data) == 0 {
		return 0, 0, ErrCorrupt
	}
	if data[0] != blockVersion {
		return d.decodeHead(data, keep, fn)
	}
	err = d.layout.parse(data)
	times, series := d.layout.times, d.layout.series
	if err != nil || len(times) == 0 {
		return 0, 0, cmp.Or(err, ErrCorrupt)
	}
	for k := range series {
		s := &series[k]
		if keep != nil && !keep(s.metric) {
			continue
		}
		ts, vs := d.ts[:0], d.values[:0]
		body, pos := s.body, 0
		var m int64
		at := 0
		for i, n := range s.runs {
			if i%2 == 0 {
				at += int(n)
				continue
			}
			ts = append(ts, times[at:at+int(n)]...)
			// decodeBlock's loop, inline as there: a shared function the compiler does not
			// inline made decoding a third slower (BenchmarkDecodeBlock).
			for range n {
				var v float64
				if s.exp < 0 {
					v = math.Float64frombits(binary.LittleEndian.Uint64(body[pos:]))
					pos += 8
				} else {
					u := uint64(body[pos])
					pos++
					if u >= 0x80 {
						var w int
						u, w = binary.Uvarint(body[pos-1:])
						pos += w - 1
					}
					m += int64(u>>1) ^ -int64(u&1)
					v = float64(m)
					if s.exp > 0 {
						v /= powersOf10[s.exp]
					}
				}
				vs = append(vs, v)
			}
			at += int(n)
		}
		d.ts, d.values = ts, vs
		fn(SeriesRun{Metric: s.metric, Work: s.work, TS: ts, Values: vs})
	}
	return times[0], times[len(times)-1], nil
}

// decodeHead groups a head chunk's points, a hundred or so, by series.
func (d *SeriesDecoder) decodeHead(data []byte, keep func(metric int32) bool, fn func(SeriesRun)) (first, last int64, err error) {
	pts, first, last, err := decodeHeadMetrics(data, d.points[:0], keep)
	d.points = pts
	if err != nil {
		return 0, 0, err
	}
	done := make([]bool, len(pts))
	for i := range pts {
		if done[i] {
			continue
		}
		ts, vs := d.ts[:0], d.values[:0]
		for j := i; j < len(pts); j++ {
			if p := &pts[j]; !done[j] && p.Metric == pts[i].Metric && sameWork(p.Work, pts[i].Work) {
				done[j] = true
				ts, vs = append(ts, p.TS), append(vs, p.Value)
			}
		}
		d.ts, d.values = ts, vs
		fn(SeriesRun{Metric: pts[i].Metric, Work: pts[i].Work, TS: ts, Values: vs})
	}
	return first, last, nil
}

func sameWork(a, b *Workload) bool {
	return a == b || a != nil && b != nil && *a == *b
}
