package engine

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Rollups are the downsampled tiers: per series (metric and workload) and bucket of a tier's
// step, the count, sum, min, max, first and last of its samples and, where it differs from
// last - first, its increase across counter resets — what avg/sum/min/max/count/last
// _over_time, rate and increase need over whole buckets, as Thanos keeps them. They are
// stored as blocks are (block.go), one row per device and span of the tier: each aggregate
// is a point at its bucket's start whose metric is the series' metric id times AggKinds plus
// the aggregate (AggCount, …), so that one encoder, one decoder and one SQL function serve
// raw and downsampled data alike.
//
// A rollup is a function of the samples stored: a window's 5-minute buckets are computed
// from its block when it is sealed, a day's hourly buckets from its 5-minute ones, each
// written in the same transaction, replacing those before. A batch sent again, a replay or
// a second collector changes no sample, so no bucket is counted twice; points arriving late
// reopen the window, and its buckets are computed again.

// Tier is a downsampled resolution.
type Tier struct {
	Step time.Duration // a bucket
	Span time.Duration // a row: a device's buckets of one span, aligned to the Unix epoch
}

// Tiers are the resolutions kept, finest first: each coarser one's span a multiple of the
// finest's, whose span is a whole number of windows (a day: twelve), so that a day of a
// coarser row is computed from a whole row of the finest. Rows of a few kilobytes and more
// are what PostgreSQL compresses.
var Tiers = []Tier{
	{Step: 5 * time.Minute, Span: 24 * time.Hour},
	{Step: time.Hour, Span: 7 * 24 * time.Hour},
}

// The aggregates of a bucket, in the low bits of a rollup point's metric.
const (
	AggCount = iota
	AggSum
	AggMin
	AggMax
	AggFirst
	AggLast
	AggIncrease // only where it is not AggLast - AggFirst: the series went down in the bucket
	AggLastAt   // µs from the bucket's start to its last sample: which of a time-sliced GPU's
	// pods, sharing its buckets, reported last, and when a fleet's latest values were read
	AggKinds = 8
)

// SpanOf returns the start of the tier's span holding ts.
func (t Tier) SpanOf(ts int64) int64 {
	span := t.Span.Microseconds()
	return floorDiv(ts, span) * span
}

// Bucket is the aggregates of one series over one bucket.
type Bucket struct {
	Start                                int64 // Unix µs
	Metric                               int32
	Work                                 *Workload
	Count                                int64
	Sum, Min, Max, First, Last, Increase float64
	LastAt                               int64 // Unix µs of Last
}

// Avg is the mean of the bucket's samples.
func (b *Bucket) Avg() float64 { return b.Sum / float64(b.Count) }

// add takes a sample at ts, the bucket's latest so far.
func (o *openBucket) add(ts int64, v float64) {
	if o.Count == 0 {
		o.Min, o.Max, o.First = v, v, v
	} else {
		o.Min, o.Max = min(o.Min, v), max(o.Max, v)
		o.inc.add(increase(o.Last, v))
	}
	o.Count++
	o.Last, o.LastAt = v, ts
	o.sum.add(v)
}

// merge takes the bucket after o's, of the same series.
func (o *openBucket) merge(next *Bucket) {
	if o.Count == 0 {
		o.Min, o.Max, o.First = next.Min, next.Max, next.First
	} else {
		o.Min, o.Max = min(o.Min, next.Min), max(o.Max, next.Max)
		o.inc.add(increase(o.Last, next.First))
	}
	o.inc.add(next.Increase)
	o.Count += next.Count
	o.Last, o.LastAt = next.Last, next.LastAt
	o.sum.add(next.Sum)
}

// increase is a counter's increase from a to b: b itself after a reset, as Prometheus has it.
// Between decimals, it is the decimal of their difference, not the float64 subtraction's
// rounding of it, so that increases add up exactly too.
func increase(a, b float64) float64 {
	if b < a {
		return b
	}
	for _, p := range powersOf10 {
		ma, mb := math.Round(a*p), math.Round(b*p)
		if ma/p == a && mb/p == b && math.Abs(ma) <= maxWhole && math.Abs(mb) <= maxWhole {
			return (mb - ma) / p
		}
	}
	return b - a
}

// exactSum adds values that are decimals of a few digits, as DCGM's are, exactly: as integers
// of their smallest common exponent, so that a sum is the decimal it should be, which the
// block encoder stores in a byte or two rather than as eight bytes of rounding noise. Other
// values fall back to a float64 sum.
type exactSum struct {
	m       int64 // the sum is m / 10^e while exact
	e       int
	inexact bool
	f       float64
}

func (s *exactSum) add(v float64) {
	s.f += v
	if s.inexact {
		return
	}
	for e := s.e; e <= maxExponent; e++ {
		m := math.Round(v * powersOf10[e])
		if math.Abs(m) > maxWhole || m/powersOf10[e] != v {
			continue
		}
		if e > s.e { // rescale what is summed so far, while it stays exact
			scaled := float64(s.m) * powersOf10[e-s.e]
			if math.Abs(scaled) > maxWhole {
				break
			}
			s.m, s.e = int64(scaled), e
		}
		if sum := s.m + int64(m); math.Abs(float64(sum)) <= maxWhole {
			s.m = sum
			return
		}
		break
	}
	s.inexact = true
}

func (s *exactSum) value() float64 {
	if s.inexact {
		return s.f
	}
	return float64(s.m) / powersOf10[s.e]
}

// seriesKey names a series of a device.
type seriesKey struct {
	metric int32
	work   Workload
	worked bool
}

func keyOf(metric int32, w *Workload) seriesKey {
	if w == nil {
		return seriesKey{metric: metric}
	}
	return seriesKey{metric: metric, work: *w, worked: true}
}

// bucketer gathers buckets of one step, series by series.
type bucketer struct {
	step   int64
	open   map[seriesKey]*openBucket
	closed []Bucket
}

type openBucket struct {
	Bucket
	sum, inc exactSum
}

func newBucketer(step time.Duration) *bucketer {
	return &bucketer{step: step.Microseconds(), open: map[seriesKey]*openBucket{}}
}

// at returns the open bucket of a series for ts, closing the one before.
func (b *bucketer) at(ts int64, metric int32, w *Workload) *openBucket {
	start := floorDiv(ts, b.step) * b.step
	k := keyOf(metric, w)
	o := b.open[k]
	if o != nil && o.Start == start {
		return o
	}
	if o != nil {
		b.close(o)
	}
	o = &openBucket{Bucket: Bucket{Start: start, Metric: metric, Work: w}}
	b.open[k] = o
	return o
}

func (b *bucketer) close(o *openBucket) {
	o.Sum, o.Increase = o.sum.value(), o.inc.value()
	b.closed = append(b.closed, o.Bucket)
}

// buckets closes every bucket and returns them all, sorted by start, metric and workload.
func (b *bucketer) buckets() []Bucket {
	for _, o := range b.open {
		b.close(o)
	}
	clear(b.open)
	slices.SortFunc(b.closed, func(x, y Bucket) int {
		return Compare(Point{TS: x.Start, Metric: x.Metric, Work: x.Work}, Point{TS: y.Start, Metric: y.Metric, Work: y.Work})
	})
	return b.closed
}

// Rollup reduces a device's points, sorted by Compare and each sample once (a sealed
// window's), into buckets of step. Values that are not finite are left out, as the API's
// aggregations leave them.
func Rollup(pts []Point, step time.Duration) []Bucket {
	b := newBucketer(step)
	for i := range pts {
		p := &pts[i]
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			continue
		}
		o := b.at(p.TS, p.Metric, p.Work)
		o.add(p.TS, p.Value)
	}
	return b.buckets()
}

// RollupBlocks reduces the points of a window's sealed blocks, in any order, into buckets
// of the finest tier: what a window sealed before the tiers existed gets.
func RollupBlocks(pts []Point) []Bucket {
	pts, _ = sortUnique(pts)
	return Rollup(pts, Tiers[0].Step)
}

// Coarsen merges buckets, sorted by start (those of one device's finer rows, in order), into
// buckets of step.
func Coarsen(in []Bucket, step time.Duration) []Bucket {
	b := newBucketer(step)
	for i := range in {
		o := b.at(in[i].Start, in[i].Metric, in[i].Work)
		o.merge(&in[i])
	}
	return b.buckets()
}

// EncodeRollup packs buckets, sorted as Rollup returns them, as a block of aggregate points.
func EncodeRollup(bs []Bucket) []byte {
	pts := make([]Point, 0, len(bs)*6)
	for i := range bs {
		b := &bs[i]
		m := b.Metric * AggKinds
		pts = append(pts,
			Point{TS: b.Start, Metric: m + AggCount, Value: float64(b.Count), Work: b.Work},
			Point{TS: b.Start, Metric: m + AggSum, Value: b.Sum, Work: b.Work},
			Point{TS: b.Start, Metric: m + AggMin, Value: b.Min, Work: b.Work},
			Point{TS: b.Start, Metric: m + AggMax, Value: b.Max, Work: b.Work},
			Point{TS: b.Start, Metric: m + AggFirst, Value: b.First, Work: b.Work},
			Point{TS: b.Start, Metric: m + AggLast, Value: b.Last, Work: b.Work})
		if b.Increase != b.Last-b.First {
			pts = append(pts, Point{TS: b.Start, Metric: m + AggIncrease, Value: b.Increase, Work: b.Work})
		}
		pts = append(pts, Point{TS: b.Start, Metric: m + AggLastAt, Value: float64(b.LastAt - b.Start), Work: b.Work})
	}
	return encodeBlock(pts)
}

// DecodeRollup appends a rollup row's buckets to dst, sorted by start, metric and workload.
func DecodeRollup(data []byte, dst []Bucket) ([]Bucket, error) {
	return DecodeRollupIn(data, math.MinInt64, math.MaxInt64, nil, dst)
}

// DecodeRollupIn is DecodeRollup of the buckets starting in [from, to), of the metrics keep
// holds (all when nil). A row's aggregates are decoded series by series into a bucket per
// time, without a point each: a month's hourly row is some 50,000 values, of which a
// question about one metric of ten needs a tenth.
func DecodeRollupIn(data []byte, from, to int64, keep map[int32]bool, dst []Bucket) ([]Bucket, error) {
	var l blockLayout
	if err := l.parse(data); err != nil {
		return dst, err
	}
	type key struct {
		metric int32
		work   *Workload
	}
	type column struct {
		key
		buckets  []Bucket // a bucket per time of the row
		explicit []bool   // its increase is stored
	}
	var columns []*column
	byKey := map[key]*column{}
	for k := range l.series {
		s := &l.series[k]
		if keep != nil && !keep[s.metric/AggKinds] {
			continue
		}
		c := byKey[key{s.metric / AggKinds, s.work}]
		if c == nil {
			c = &column{key: key{s.metric / AggKinds, s.work}, buckets: make([]Bucket, len(l.times))}
			byKey[c.key] = c
			columns = append(columns, c)
		}
		kind := s.metric % AggKinds
		if kind == AggIncrease {
			c.explicit = make([]bool, len(l.times))
		}
		s.each(func(t int, v float64) {
			b := &c.buckets[t]
			switch kind {
			case AggCount:
				b.Count = int64(v)
			case AggSum:
				b.Sum = v
			case AggMin:
				b.Min = v
			case AggMax:
				b.Max = v
			case AggFirst:
				b.First = v
			case AggLast:
				b.Last = v
			case AggIncrease:
				b.Increase, c.explicit[t] = v, true
			case AggLastAt:
				b.LastAt = int64(v) + 1 // 0: not stored
			}
		})
	}
	slices.SortFunc(columns, func(a, b *column) int { return cmp.Or(cmp.Compare(a.metric, b.metric), CompareWork(a.work, b.work)) })
	for t, ts := range l.times {
		if ts < from || ts >= to {
			continue
		}
		for _, c := range columns {
			b := c.buckets[t]
			if b.Count <= 0 {
				if b != (Bucket{}) {
					return dst, ErrCorrupt // aggregates of no samples
				}
				continue
			}
			b.Start, b.Metric, b.Work = ts, c.metric, c.work
			if c.explicit == nil || !c.explicit[t] {
				b.Increase = b.Last - b.First
			}
			if b.LastAt == 0 {
				b.LastAt = ts
			} else {
				b.LastAt += ts - 1
			}
			dst = append(dst, b)
		}
	}
	return dst, nil
}
