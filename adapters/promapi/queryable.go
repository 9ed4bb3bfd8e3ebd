package promapi

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// Queryable is the store as Prometheus' storage.Queryable: a series is a device's metric
// with one workload attribution, labelled as dcgm-exporter labels it
// (telemetry.SeriesLabels). Matchers on the device's labels and on __name__ choose what is
// read, in one pass over every device they may select; those on the workload are applied
// to the series found. The devices and metrics come from a catalog read at most once a
// second, less often when the fleet is slow to list, and indexed by host and UUID
// (catalog.go). Range functions whose windows are whole buckets of a downsampled tier read
// that tier (tiers.go).
type Queryable struct {
	Inventory ports.Inventory
	Series    ports.SeriesReader
	Tiers     ports.SummaryReader // nil: the samples answer every query

	cache catalogCache
}

// Querier implements storage.Queryable.
func (q *Queryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{q: q, mint: mint, maxt: maxt}, nil
}

// limited is q reading maxSamples points at most for each querier, and tiers no coarser
// than maxResolution (telemetry.ParseMaxResolution): what the API gives the engine.
type limited struct {
	q             *Queryable
	maxSamples    int
	maxResolution time.Duration
}

func (l limited) Querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{q: l.q, mint: mint, maxt: maxt, maxSamples: l.maxSamples, maxResolution: l.maxResolution}, nil
}

// A querier serves one query.
type querier struct {
	q             *Queryable
	mint, maxt    int64
	maxSamples    int           // the points its Selects read at most; 0: no limit
	maxResolution time.Duration // the coarsest tier its Selects read
	read          atomic.Int64  // points read by its Selects
}

func (*querier) Close() error { return nil }

// workloadLabels are a sample's, not its device's.
var workloadLabels = []string{"pod", "namespace", "container"}

// Select implements storage.Querier.
func (qr *querier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := qr.mint, qr.maxt
	labelsOnly := false // series, labels and label values: no point is kept, none counted
	if hints != nil {
		mint, maxt = hints.Start, hints.End
		labelsOnly = hints.Func == "series"
	}
	cat, err := qr.q.catalog(ctx)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	metrics, devices := cat.candidates(ms)
	var out []storage.Series
	var notes annotations.Annotations
	if len(devices) > 0 {
		if plan, ok := qr.tierPlan(hints); ok {
			out, notes, err = qr.selectTier(ctx, plan, cat, metrics, devices, ms)
		} else {
			out, err = qr.selectSamples(ctx, cat, metrics, devices, ms, mint, maxt, labelsOnly)
			if err == nil && !labelsOnly {
				notes, err = qr.beyondRetention(ctx, mint)
			}
		}
		if err != nil {
			return storage.ErrSeriesSet(err)
		}
	}
	slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &seriesSet{series: out, notes: notes}
}

// selectSamples reads the samples of the series ms selects among devices within [mint, maxt]
// (milliseconds), each ended by a staleness marker where it went stale.
func (qr *querier) selectSamples(ctx context.Context, cat *catalog, metrics []string, devices []*catalogDevice,
	ms []*labels.Matcher, mint, maxt int64, labelsOnly bool) ([]storage.Series, error) {
	from, to := time.UnixMilli(mint).UTC(), time.UnixMilli(maxt).UTC()
	byKey := make(map[string]*catalogDevice, len(devices))
	q := telemetry.SeriesQuery{Range: telemetry.TimeRange{Start: from, End: to}, Metrics: metrics}
	for _, d := range devices {
		byKey[d.key] = d
		q.GPUs = append(q.GPUs, d.key)
	}
	scrapes, err := qr.scrapes(ctx, cat, devices, q.Range)
	if err != nil {
		return nil, err
	}
	var out []storage.Series
	var b labels.ScratchBuilder
	var group []telemetry.Series // one device's series of one metric, a series a workload
	flush := func() {
		if len(group) == 0 {
			return
		}
		ends := staleAt(group, scrapes[byKey[group[0].GPU].target])
		for i, s := range group {
			ls := byKey[s.GPU].seriesLabels(&b, s)
			if !matchesAll(ms, ls) {
				continue
			}
			pts := make([]promql.FPoint, len(s.Points), len(s.Points)+1)
			for i, p := range s.Points {
				pts[i] = promql.FPoint{T: p.Time / 1000, F: p.Value} // PromQL counts in milliseconds
			}
			if ends[i] != 0 {
				pts = append(pts, promql.FPoint{T: ends[i] / 1000, F: math.Float64frombits(value.StaleNaN)})
			}
			out = append(out, promql.NewStorageSeries(promql.Series{Metric: ls, Floats: pts}))
		}
		group = group[:0]
	}
	err = qr.q.Series.Series(ctx, q, func(s telemetry.Series) error {
		switch {
		case labelsOnly && len(s.Points) > 1:
			s.Points = s.Points[len(s.Points)-1:] // the series is there; its points are not asked for
		case labelsOnly:
		default:
			if err := qr.count(len(s.Points)); err != nil {
				return err // the read stops: memory in proportion to the limit, not to the data
			}
		}
		if len(group) > 0 && (group[0].GPU != s.GPU || group[0].Metric != s.Metric) {
			flush()
		}
		group = append(group, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	flush()
	return out, nil
}

// count adds n points read to the query's, failing as the engine does past its limit.
func (qr *querier) count(n int) error {
	if qr.maxSamples > 0 && qr.read.Add(int64(n)) > int64(qr.maxSamples) {
		return promql.ErrTooManySamples("reading from the store")
	}
	return nil
}

// scrapes returns the times the targets of devices were scraped within r (their up samples),
// by target key, ascending: what ends their series as Prometheus' staleness markers do.
func (qr *querier) scrapes(ctx context.Context, cat *catalog, devices []*catalogDevice, r telemetry.TimeRange) (map[string][]int64, error) {
	q := telemetry.SeriesQuery{Range: r, Metrics: []string{telemetry.MetricUp}}
	seen := map[string]bool{}
	for _, d := range devices {
		if d.target != "" && cat.targets[d.target] && !seen[d.target] {
			seen[d.target] = true
			q.GPUs = append(q.GPUs, d.target)
		}
	}
	if len(q.GPUs) == 0 {
		return nil, nil
	}
	out := map[string][]int64{}
	err := qr.q.Series.Series(ctx, q, func(s telemetry.Series) error {
		for _, p := range s.Points {
			out[s.GPU] = append(out[s.GPU], p.Time)
		}
		return nil
	})
	for k := range out {
		slices.Sort(out[k])
	}
	return out, err
}

// staleAt returns, for each series of one device's metric (a series a workload), when it
// went stale, 0 for one that did not within the span read: at its target's first scrape
// after its last sample, when its target's scrapes are known (scrapes, ascending) — the
// target down, or the series gone from its exposition — as Prometheus' staleness markers
// end it; otherwise at the device's first sample of the metric after its last (a pod
// replaced, one of the pods time-slicing a GPU gone). Without either, a series lingers for
// the lookback.
func staleAt(group []telemetry.Series, scrapes []int64) []int64 {
	ends := make([]int64, len(group))
	times := scrapes
	if len(times) == 0 {
		if len(group) < 2 {
			return ends
		}
		for _, s := range group {
			for _, p := range s.Points {
				times = append(times, p.Time)
			}
		}
		slices.Sort(times)
	}
	for i, s := range group {
		if n := len(s.Points); n > 0 {
			last := s.Points[n-1].Time
			if at, _ := slices.BinarySearch(times, last+1); at < len(times) {
				ends[i] = times[at]
			}
		}
	}
	return ends
}

// deviceMayMatch tests the matchers on labels of the device; those on __name__, on the
// workload and on a family's own labels wait for the series.
func deviceMayMatch(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if m.Name == model.MetricNameLabel || slices.Contains(workloadLabels, m.Name) || telemetry.FamilyLabels[m.Name] || folded[m.Name] {
			continue
		}
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// folded are the labels folded into stored metric names (telemetry.FoldedLabels).
var folded = func() map[string]bool {
	out := map[string]bool{}
	for _, name := range telemetry.FoldedLabels {
		out[name] = true
	}
	return out
}()

// metricMatches tests the matchers on __name__, and on the label folded into a stored
// metric's name (telemetry.UnfoldMetric) or, for another metric, its absence.
func metricMatches(ms []*labels.Matcher, stored string) bool {
	metric, label, ok := telemetry.UnfoldMetric(stored)
	for _, m := range ms {
		switch {
		case m.Name == model.MetricNameLabel && !m.Matches(metric):
			return false
		case folded[m.Name] && ok && m.Name == label.Name && !m.Matches(label.Value):
			return false
		case folded[m.Name] && (!ok || m.Name != label.Name) && !m.Matches(""):
			return false
		}
	}
	return true
}

func matchesAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

func seriesLabels(g telemetry.GPU, s telemetry.Sample) labels.Labels {
	b := labels.NewScratchBuilder(16)
	for _, l := range telemetry.SeriesLabels(g, s) {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels()
}

// LabelNames implements storage.LabelQuerier: the names of the labels of the series the
// matchers select in the querier's span.
func (qr *querier) LabelNames(ctx context.Context, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	seen := map[string]bool{}
	err := qr.eachSeries(ctx, ms, func(ls labels.Labels) {
		ls.Range(func(l labels.Label) { seen[l.Name] = true })
	})
	return sortedKeys(seen), nil, err
}

// LabelValues implements storage.LabelQuerier.
func (qr *querier) LabelValues(ctx context.Context, name string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	seen := map[string]bool{}
	err := qr.eachSeries(ctx, ms, func(ls labels.Labels) {
		if v := ls.Get(name); v != "" {
			seen[v] = true
		}
	})
	return sortedKeys(seen), nil, err
}

// eachSeries calls fn with the labels of every series the matchers select.
func (qr *querier) eachSeries(ctx context.Context, ms []*labels.Matcher, fn func(labels.Labels)) error {
	set := qr.Select(ctx, false, seriesHints(qr.mint, qr.maxt), ms...)
	for set.Next() {
		fn(set.At().Labels())
	}
	return set.Err()
}

// seriesHints asks Select for labels only, as Prometheus' API asks for series.
func seriesHints(mint, maxt int64) *storage.SelectHints {
	return &storage.SelectHints{Start: mint, End: maxt, Func: "series"}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, strings.Compare)
	return out
}

type seriesSet struct {
	series []storage.Series
	notes  annotations.Annotations
	i      int
}

func (s *seriesSet) Next() bool {
	s.i++
	return s.i <= len(s.series)
}
func (s *seriesSet) At() storage.Series                { return s.series[s.i-1] }
func (*seriesSet) Err() error                          { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return s.notes }
