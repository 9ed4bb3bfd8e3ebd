package query

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Acc accumulates a series' values into every aggregation the queries answer: the one
// meaning of avg, min, max, last and count, for a GPU's buckets, a fleet's groups and its
// top and latest lists. A value that is not a finite number (DCGM's blank reads as NaN) is
// left out: no summary can hold it, and JSON has no NaN.
type Acc struct {
	Count    int64
	Sum      float64
	Min, Max float64
	Last     telemetry.Point // the newest; of two at one time, the later added
}

// Add adds a point.
func (a *Acc) Add(p telemetry.Point) {
	if !finite(p.Value) {
		return
	}
	if a.Count == 0 {
		a.Min, a.Max, a.Last = p.Value, p.Value, p
	}
	a.Count++
	a.Sum += p.Value
	a.Min, a.Max = min(a.Min, p.Value), max(a.Max, p.Value)
	if p.Time >= a.Last.Time {
		a.Last = p
	}
}

// Merge adds the samples a bucket summarises.
func (a *Acc) Merge(sm telemetry.Summary) {
	if sm.Count == 0 {
		return
	}
	last := telemetry.Point{Time: sm.LastAt, Value: sm.Last}
	if a.Count == 0 {
		a.Min, a.Max, a.Last = sm.Min, sm.Max, last
	}
	a.Count += sm.Count
	a.Sum += sm.Sum
	a.Min, a.Max = min(a.Min, sm.Min), max(a.Max, sm.Max)
	if last.Time >= a.Last.Time {
		a.Last = last
	}
}

// Value is agg of the values added; meaningless while Count is 0.
func (a *Acc) Value(agg telemetry.Aggregation) float64 {
	switch agg {
	case telemetry.AggMin:
		return a.Min
	case telemetry.AggMax:
		return a.Max
	case telemetry.AggLast:
		return a.Last.Value
	case telemetry.AggCount:
		return float64(a.Count)
	}
	return a.Sum / float64(a.Count)
}

// finite leaves out what no summary can hold.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Aggregate returns one value per metric per step, ordered by step, then metric name: agg
// of the samples in each bucket, buckets aligned to the Unix epoch. The step must be whole
// seconds, at least MinStep; a window bounded at both ends may hold at most MaxBuckets
// steps. At most MaxBuckets values: Truncated says there were more. A window bounded at both
// ends whose step is a multiple of a downsampled tier's is read from the coarsest such tier
// within q.MaxResolution (the same answer as the samples give, and one that outlives them);
// Resolution says which. An unknown GPU matches telemetry.ErrNotFound.
func (s *Service) Aggregate(ctx context.Context, q telemetry.AggregateQuery) (telemetry.Aggregated, error) {
	var res telemetry.Aggregated
	switch {
	case q.GPU == "":
		return res, telemetry.Invalid("uuid", "is empty")
	case q.Step < MinStep || q.Step%time.Second != 0:
		return res, telemetry.Invalid("step", "must be whole seconds, at least 1s, got %s", q.Step)
	case !slices.Contains(telemetry.Aggregations, q.Agg):
		return res, telemetry.Invalid("agg", "%q is not one of avg, min, max, last, count", q.Agg)
	}
	if err := validateRange(q.Range); err != nil {
		return res, err
	}
	if !q.Range.Start.IsZero() && !q.Range.End.IsZero() {
		if steps := q.Range.End.Sub(q.Range.Start)/q.Step + 1; steps > MaxBuckets {
			return res, telemetry.Invalid("step", "the window holds %d steps of %s, more than %d: widen the step or narrow the window",
				steps, q.Step, MaxBuckets)
		}
	}
	set := bucketSet{step: q.Step.Microseconds(), limit: MaxBuckets + 1}
	var err error
	if res.Resolution = s.tierFor(q); res.Resolution > 0 {
		err = s.tiers.Summaries(ctx, telemetry.SummaryQuery{GPUs: []string{q.GPU}, Range: q.Range, Metrics: q.Metrics, Step: res.Resolution},
			func(sr telemetry.SummarySeries) error {
				set.addSummaries(sr)
				return nil
			})
	} else {
		err = s.series.Series(ctx, telemetry.SeriesQuery{GPUs: []string{q.GPU}, Range: q.Range, Metrics: q.Metrics, Transient: true},
			func(sr telemetry.Series) error {
				set.add(sr)
				return nil
			})
	}
	if err != nil {
		return res, err
	}
	if len(set.metrics) == 0 {
		// Nothing in the window: an answer, unless the GPU is unknown.
		if err := s.exists(ctx, q.GPU); err != nil {
			return res, err
		}
	}
	res.Buckets = set.values(q.Agg)
	if len(res.Buckets) > MaxBuckets {
		res.Buckets, res.Truncated = res.Buckets[:MaxBuckets], true
	}
	if res.Warnings, err = s.beyondRetention(ctx, q, res.Resolution); err != nil {
		return res, err
	}
	return res, nil
}

// beyondRetention warns when an aggregation read from the samples reaches back before the
// oldest one kept: those buckets are empty or short, not because nothing happened. A tier
// holds whole buckets long after; only a bucket the window's start cuts is read from the
// samples there.
func (s *Service) beyondRetention(ctx context.Context, q telemetry.AggregateQuery, resolution time.Duration) ([]string, error) {
	if s.tiers == nil || q.Range.Start.IsZero() {
		return nil, nil
	}
	oldest, err := s.tiers.DeletedBefore(ctx)
	if err != nil || oldest.IsZero() || !q.Range.Start.Before(oldest) {
		return nil, err
	}
	at := oldest.UTC().Format(time.RFC3339)
	switch {
	case resolution == 0:
		return []string{fmt.Sprintf("samples before %s are no longer kept (retention): buckets before then are empty or short; "+
			"over a window bounded at both ends, a step that is a multiple of %s is read from the downsampled tiers, which keep them longer",
			at, s.tiers.SummarySteps()[0])}, nil
	case q.Range.Start.UnixMicro()%resolution.Microseconds() != 0:
		return []string{fmt.Sprintf("start_time cuts the first bucket, which is read from the samples, kept from %s on only: "+
			"start on a whole %s for the tier's whole bucket", at, resolution)}, nil
	}
	return nil, nil
}

// tierFor returns the step of the coarsest tier an aggregation may read, 0 for none: one
// whose step divides the aggregation's, within its MaxResolution, over a window bounded at
// both ends.
func (s *Service) tierFor(q telemetry.AggregateQuery) time.Duration {
	if s.tiers == nil || q.MaxResolution == telemetry.RawResolution || q.Range.Start.IsZero() || q.Range.End.IsZero() {
		return 0
	}
	var best time.Duration
	for _, step := range s.tiers.SummarySteps() {
		if q.Step%step == 0 && (q.MaxResolution == telemetry.AnyResolution || step <= q.MaxResolution) {
			best = max(best, step)
		}
	}
	return best
}

// exists returns an error matching telemetry.ErrNotFound unless a device has the key.
func (s *Service) exists(ctx context.Context, key string) error {
	uuid, instance := telemetry.SplitDeviceKey(key)
	devices, err := s.inv.GPUs(ctx, telemetry.GPUFilter{UUID: uuid, NoSpan: true})
	if err != nil {
		return err
	}
	for _, d := range devices {
		if d.Key() == key {
			return nil
		}
	}
	if instance != "" && len(devices) > 0 {
		return fmt.Errorf("GPU %s has no MIG instance %s: %w", uuid, instance, telemetry.ErrNotFound)
	}
	return fmt.Errorf("GPU %s: %w", uuid, telemetry.ErrNotFound)
}

// bucketSet reduces one device's series to an Acc per metric per step-long bucket. Series
// of one metric under several workloads (a time-sliced GPU's pods) fall in the same buckets.
// Each metric keeps its first limit buckets at most: an answer ordered by time and cut at
// limit values holds no later one.
type bucketSet struct {
	step    int64 // µs
	limit   int
	metrics []*metricBuckets // in the order first seen
}

type metricBuckets struct {
	name    string
	buckets []bucket // by start
}

type bucket struct {
	start int64
	acc   Acc
}

func (b *bucketSet) add(s telemetry.Series) {
	if len(s.Points) == 0 {
		return
	}
	m := b.metric(s.Metric)
	at := 0 // where the last point's bucket is, in m.buckets: points come in time order
	for i := 0; i < len(s.Points); {
		start := floorDiv(s.Points[i].Time, b.step) * b.step
		var ok bool
		if at, ok = b.bucketAt(m, start, at, s.Points[len(s.Points)-1].Time); !ok {
			break
		}
		acc, end := &m.buckets[at].acc, start+b.step
		for ; i < len(s.Points) && s.Points[i].Time < end; i++ {
			acc.Add(s.Points[i])
		}
	}
	// A bucket of values that are not numbers only is none.
	m.buckets = slices.DeleteFunc(m.buckets, func(bk bucket) bool { return bk.acc.Count == 0 })
}

// addSummaries adds a series summarised in buckets of a step that divides the set's.
func (b *bucketSet) addSummaries(s telemetry.SummarySeries) {
	if len(s.Summaries) == 0 {
		return
	}
	m := b.metric(s.Metric)
	at := 0
	for _, sm := range s.Summaries {
		var ok bool
		if at, ok = b.bucketAt(m, floorDiv(sm.Start, b.step)*b.step, at, s.Summaries[len(s.Summaries)-1].Start); !ok {
			break
		}
		m.buckets[at].acc.Merge(sm)
	}
}

// metric returns the buckets of a metric, made when new.
func (b *bucketSet) metric(name string) *metricBuckets {
	// A device's series come by metric: the one before is the likely one.
	if n := len(b.metrics); n > 0 && b.metrics[n-1].name == name {
		return b.metrics[n-1]
	}
	if i := slices.IndexFunc(b.metrics, func(m *metricBuckets) bool { return m.name == name }); i >= 0 {
		return b.metrics[i]
	}
	m := &metricBuckets{name: name}
	b.metrics = append(b.metrics, m)
	return m
}

// bucketAt returns the index in m.buckets of the bucket starting at start, made when new,
// looking from at on (a series comes in time order), the series' last time sizing m's
// buckets at once; false when the answer can hold no bucket that late.
func (b *bucketSet) bucketAt(m *metricBuckets, start int64, at int, last int64) (int, bool) {
	switch {
	case at < len(m.buckets) && m.buckets[at].start == start:
		return at, true
	case at == len(m.buckets)-1 && start > m.buckets[at].start && len(m.buckets) < b.limit:
		m.buckets = append(m.buckets, bucket{start: start}) // the common case: the next
		return at + 1, true
	}
	j, found := slices.BinarySearchFunc(m.buckets[at:], start, func(bk bucket, t int64) int {
		return cmp.Compare(bk.start, t)
	})
	if at += j; found {
		return at, true
	}
	if at >= b.limit {
		return at, false // later than any bucket the answer can hold
	}
	if m.buckets == nil {
		// Room for the series' span at once, rather than append's doublings.
		span := (last-start)/b.step + 1
		m.buckets = make([]bucket, 0, min(span, int64(b.limit)))
	}
	m.buckets = slices.Insert(m.buckets, at, bucket{start: start})
	if len(m.buckets) > b.limit {
		m.buckets = m.buckets[:b.limit]
	}
	return at, true
}

// values returns agg of every bucket, by start, then metric name, limit at most.
func (b *bucketSet) values(agg telemetry.Aggregation) []telemetry.Bucket {
	slices.SortFunc(b.metrics, func(x, y *metricBuckets) int { return cmp.Compare(x.name, y.name) })
	total := 0
	for _, m := range b.metrics {
		total += len(m.buckets)
	}
	out := make([]telemetry.Bucket, 0, min(total, b.limit))
	next := make([]int, len(b.metrics)) // each metric's first bucket not taken yet
	first := int64(math.MaxInt64)       // the earliest bucket left
	for _, m := range b.metrics {
		if len(m.buckets) > 0 {
			first = min(first, m.buckets[0].start)
		}
	}
	for len(out) < cap(out) {
		// The metrics at first, in name order, finding the start after meanwhile.
		at, after := time.UnixMicro(first).UTC(), int64(math.MaxInt64)
		for k, m := range b.metrics {
			if next[k] == len(m.buckets) {
				continue
			}
			if bk := &m.buckets[next[k]]; bk.start == first && len(out) < cap(out) {
				out = append(out, telemetry.Bucket{Start: at, Metric: m.name, Value: bk.acc.Value(agg), Count: bk.acc.Count})
				next[k]++
			}
			if next[k] < len(m.buckets) {
				after = min(after, m.buckets[next[k]].start)
			}
		}
		first = after
	}
	return out
}

// floorDiv divides rounding towards minus infinity, so that buckets before 1970 align too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
