package engine

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
)

// blockVersion is the first byte of every block. A block holds one device's points in one
// window, by series — a series being a metric with its workload. The layout after it:
//
//	uvarint workloads; each: 3 × (uvarint length, bytes) for container, pod, namespace
//	uvarint times, then the times the device's points have, ascending: a zigzag varint of
//	        the first (Unix µs), then of each delta's difference from the one before, the
//	        first delta's from 0 — a steady scrape interval is a run of zeros
//	uvarint series; each, ordered by metric id and workload:
//	        uvarint metric id, uvarint workload (0 none, k the k-th above)
//	        uvarint runs, then each run's length: the times the series is absent from,
//	        present at, absent from, … — one run of all the times for a series scraped
//	        every time
//	        byte values: 1+e for decimals, each value an integer m standing for m / 10^e,
//	        then a zigzag varint of each m's difference from the one before (the first
//	        from 0); 0 for any other series, each value 8 bytes of little-endian float64
//
// DCGM values are whole numbers or have a few decimals, so most series are integers that
// move little: a byte or two a sample before compression, and runs of repeated bytes that
// PostgreSQL's own compression of the row takes much further (docs/performance.md).
const blockVersion = 3

// maxExponent bounds the decimal exponents tried: 10^15 is exact in a float64.
const maxExponent = 15

var powersOf10 = func() (p [maxExponent + 1]float64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// decimalExponent returns the smallest e for which every value is exactly m / 10^e for an
// integer m within ±maxWhole, false when there is none (fractions of many digits, NaN, ±Inf,
// -0).
func decimalExponent(vs []float64) (int, bool) {
next:
	for e, p := range powersOf10 {
		for _, v := range vs {
			m := math.Round(v * p)
			if math.Abs(m) > maxWhole || m/p != v || (v == 0 && math.Signbit(v)) {
				continue next
			}
		}
		return e, true
	}
	return 0, false
}

// blockSeries is one series of a block being encoded.
type blockSeries struct {
	metric int32
	work   uint64
	at     []int32 // indexes of its times
	values []float64
}

// encodeBlock packs points sorted by Compare, each (time, metric, workload) once.
func encodeBlock(pts []Point) []byte {
	var (
		works  workloadTable
		times  []int64
		series []*blockSeries
		byKey  = map[[2]uint64]*blockSeries{}
	)
	works.seed(pts)
	for i := range pts {
		p := &pts[i]
		if len(times) == 0 || times[len(times)-1] != p.TS {
			times = append(times, p.TS)
		}
		key := [2]uint64{uint64(uint32(p.Metric)), works.index(p.Work)}
		s := byKey[key]
		if s == nil {
			s = &blockSeries{metric: p.Metric, work: key[1]}
			byKey[key] = s
			series = append(series, s)
		}
		s.at = append(s.at, int32(len(times)-1))
		s.values = append(s.values, p.Value)
	}
	slices.SortFunc(series, func(a, b *blockSeries) int {
		return cmp.Or(cmp.Compare(a.metric, b.metric), cmp.Compare(a.work, b.work))
	})

	out := make([]byte, 0, 64+len(times)+3*len(pts))
	out = append(out, blockVersion)
	out = works.appendTo(out)
	out = binary.AppendUvarint(out, uint64(len(times)))
	var prev, delta int64
	for i, ts := range times {
		if i == 0 {
			out = binary.AppendVarint(out, ts)
		} else {
			d := ts - prev
			out = binary.AppendVarint(out, d-delta)
			delta = d
		}
		prev = ts
	}
	out = binary.AppendUvarint(out, uint64(len(series)))
	var runs []int32
	for _, s := range series {
		out = binary.AppendUvarint(out, uint64(s.metric))
		out = binary.AppendUvarint(out, s.work)
		runs = presence(s.at, runs[:0])
		out = binary.AppendUvarint(out, uint64(len(runs)))
		for _, r := range runs {
			out = binary.AppendUvarint(out, uint64(r))
		}
		e, ok := decimalExponent(s.values)
		if !ok {
			out = append(out, 0)
			for _, v := range s.values {
				out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
			}
			continue
		}
		out = append(out, byte(1+e))
		var m int64
		for _, v := range s.values {
			next := int64(math.Round(v * powersOf10[e]))
			out = binary.AppendVarint(out, next-m)
			m = next
		}
	}
	return out
}

// presence turns ascending time indexes into runs: absent, present, absent, …
func presence(at []int32, runs []int32) []int32 {
	next := int32(0) // the first time index not yet in a run
	for i := 0; i < len(at); {
		j := i + 1
		for j < len(at) && at[j] == at[j-1]+1 {
			j++
		}
		runs = append(runs, at[i]-next, int32(j-i))
		next = at[j-1] + 1
		i = j
	}
	return runs
}

// blockSeriesRef is one series of a block being read.
type blockSeriesRef struct {
	metric  int32
	work    *Workload
	runs    []int32
	present int
	body    []byte // its values
	exp     int    // -1: float64s
}

// blockLayout is a block's times and the layout of its series, as parse reads them; a
// reader that keeps one reuses its slices from block to block.
type blockLayout struct {
	times  []int64
	series []blockSeriesRef
	runs   []int32 // every series' runs, back to back
	total  int     // points
}

// parse reads a block's times and the layout of its series, checking that every value is
// there: what both ways of decoding it start from.
func (l *blockLayout) parse(data []byte) error {
	d := decoder{buf: data}
	if d.byte() != blockVersion {
		return ErrCorrupt
	}
	works := d.workloads()
	times := resize(l.times, d.count(1))
	var delta int64
	for i := range times {
		if i == 0 {
			times[0] = d.varint()
			continue
		}
		delta += d.varint()
		times[i] = times[i-1] + delta
	}
	series := resize(l.series, d.count(4))
	runs, total := l.runs[:0], 0
	for k := range series {
		s := &series[k]
		*s = blockSeriesRef{metric: int32(d.uvarint())}
		if w := d.uvarint(); w > uint64(len(works)) {
			return ErrCorrupt
		} else if w > 0 {
			s.work = &works[w-1]
		}
		first, at := len(runs), 0
		for i := range d.count(1) {
			n := d.uvarint()
			if n > uint64(len(times)-at) {
				return ErrCorrupt
			}
			runs = append(runs, int32(n))
			if i%2 == 1 {
				s.present += int(n)
			}
			at += int(n)
		}
		// A later append may move runs; this series keeps the array it was read into.
		s.runs = runs[first:len(runs):len(runs)]
		total += s.present
		kind := d.byte()
		start := d.buf
		switch {
		case kind == 0:
			s.exp = -1
			if len(d.buf) < 8*s.present {
				return ErrCorrupt
			}
			d.buf = d.buf[8*s.present:]
		case kind <= 1+maxExponent:
			s.exp = int(kind) - 1
			d.skipVarints(s.present)
		default:
			return ErrCorrupt
		}
		if d.err != nil {
			return ErrCorrupt
		}
		s.body = start[:len(start)-len(d.buf)]
	}
	if d.err != nil || len(d.buf) != 0 {
		return ErrCorrupt
	}
	l.times, l.series, l.runs, l.total = times, series, runs, total
	return nil
}

// each calls fn with the index of each of the series' times it is present at and its value
// there, in order: for the rollups' decoder, which is not hot; the raw readers keep their
// loops inline (see SeriesDecoder.Decode).
func (s *blockSeriesRef) each(fn func(t int, v float64)) {
	body, pos := s.body, 0
	var m int64
	at := 0
	for i, n := range s.runs {
		if i%2 == 0 {
			at += int(n)
			continue
		}
		for t := at; t < at+int(n); t++ {
			if s.exp < 0 {
				fn(t, math.Float64frombits(binary.LittleEndian.Uint64(body[pos:])))
				pos += 8
				continue
			}
			u, w := binary.Uvarint(body[pos:]) // parse checked that the body holds every value whole
			pos += w
			m += int64(u>>1) ^ -int64(u&1)
			v := float64(m)
			if s.exp > 0 {
				v /= powersOf10[s.exp]
			}
			fn(t, v)
		}
		at += int(n)
	}
}

// resize returns s with n elements, reusing its array when it is large enough.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// decodeBlock appends a block's points to dst, sorted by Compare. Points are placed where
// they belong as each series is read: a pass over the series' runs first counts the points
// at each time.
func decodeBlock(data []byte, dst []Point) ([]Point, error) {
	var l blockLayout
	err := l.parse(data)
	if err != nil || len(l.times) == 0 {
		return dst, cmp.Or(err, ErrCorrupt)
	}
	times, series, total := l.times, l.series, l.total
	slots := make([]int32, len(times)+1) // points at each time, then where each time's go
	for k := range series {
		at := 0
		for i, n := range series[k].runs {
			if i%2 == 1 {
				for t := at; t < at+int(n); t++ {
					slots[t+1]++
				}
			}
			at += int(n)
		}
	}
	for i := 1; i < len(slots); i++ {
		slots[i] += slots[i-1]
	}
	base := len(dst)
	dst = slices.Grow(dst, total)[:base+total]
	for k := range series {
		s := &series[k]
		body, pos := s.body, 0
		var m int64
		at := 0
		for i, n := range s.runs {
			if i%2 == 0 {
				at += int(n)
				continue
			}
			for t := at; t < at+int(n); t++ {
				p := Point{TS: times[t], Metric: s.metric, Work: s.work}
				if s.exp < 0 {
					p.Value = math.Float64frombits(binary.LittleEndian.Uint64(body[pos:]))
					pos += 8
				} else {
					// A zigzag varint, inline: most take one byte. parseBlock checked that the
					// body holds every value whole.
					u := uint64(body[pos])
					pos++
					if u >= 0x80 {
						var w int
						u, w = binary.Uvarint(body[pos-1:])
						pos += w - 1
					}
					m += int64(u>>1) ^ -int64(u&1)
					p.Value = float64(m)
					if s.exp > 0 {
						p.Value /= powersOf10[s.exp]
					}
				}
				dst[base+int(slots[t])] = p
				slots[t]++
			}
			at += int(n)
		}
	}
	return dst, nil
}
