package promapi

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Range functions over a downsampled tier, as Thanos answers them: the engine gets a point a
// bucket, at the bucket's end, holding what the function needs of it, so that a window
// (t-r, t] whose ends are whole buckets takes exactly the buckets [t-r, t) and the function
// over those points equals the function over their samples. One difference remains: a
// sample exactly at t is in PromQL's window ending at t but in the tier's bucket starting at
// t — scrapes rarely fall on the millisecond of a bucket's edge, and the answer says which
// resolution it read (an info annotation).

// tierValues is what a bucket's point holds for each range function a tier answers.
// count_over_time is not one: the engine counts points, not what they hold.
var tierValues = map[string]func(telemetry.Summary) float64{
	"avg_over_time":  func(s telemetry.Summary) float64 { return s.Sum / float64(s.Count) },
	"sum_over_time":  func(s telemetry.Summary) float64 { return s.Sum },
	"min_over_time":  func(s telemetry.Summary) float64 { return s.Min },
	"max_over_time":  func(s telemetry.Summary) float64 { return s.Max },
	"last_over_time": func(s telemetry.Summary) float64 { return s.Last },
}

// A tierPlan answers one selector from a tier.
type tierPlan struct {
	fn          string
	step        int64 // the tier's, ms
	window      int64 // the range function's, ms
	first, last int64 // the first evaluation time and the last one possible, ms
	start, end  int64 // the samples' span the engine asked for, ms
}

// tierPlan returns how a tier answers the selector of hints: inside one of tierValues'
// functions, its range and step multiples of the tier's step and its evaluation times on
// the tier's buckets' edges; the coarsest such tier within the query's
// max_source_resolution. False when none does: the samples answer.
func (qr *querier) tierPlan(h *storage.SelectHints) (tierPlan, bool) {
	if qr.q.Tiers == nil || qr.maxResolution == telemetry.RawResolution || h == nil || h.Range <= 0 {
		return tierPlan{}, false
	}
	if _, ok := tierValues[h.Func]; !ok {
		return tierPlan{}, false
	}
	// The engine asks for (first eval - range, end]: its windows are left-open.
	first := h.Start + h.Range - 1
	var best int64
	for _, step := range qr.q.Tiers.SummarySteps() {
		s := step.Milliseconds()
		if qr.maxResolution > 0 && step > qr.maxResolution {
			continue
		}
		if h.Range%s == 0 && h.Step%s == 0 && first%s == 0 {
			best = max(best, s)
		}
	}
	if best == 0 {
		return tierPlan{}, false
	}
	// Evaluation times are multiples of the step from first, or of a subquery's step: on
	// the tier's edges either way, the last at or before End.
	last := h.End - mod(h.End, best)
	return tierPlan{fn: h.Func, step: best, window: h.Range, first: first, last: last, start: h.Start, end: h.End}, last >= first
}

func mod(a, b int64) int64 { return ((a % b) + b) % b }

// tierSeries is a series read from a tier, with its device.
type tierSeries struct {
	gpu    string
	series storage.Series
	uneven bool // an average over buckets of unequal counts: not the samples' average
}

// selectTier reads the series ms selects among devices from plan's tier. An average over
// several buckets is the samples' only where the buckets of each window hold as many
// samples each (a missed scrape makes one short): a device with a series where they do not
// is read from the samples instead, or, where retention deleted those, from the tier with a
// warning.
func (qr *querier) selectTier(ctx context.Context, plan tierPlan, cat *catalog, metrics []string, devices []*catalogDevice,
	ms []*labels.Matcher) ([]storage.Series, annotations.Annotations, error) {
	byKey := make(map[string]*catalogDevice, len(devices))
	step := time.Duration(plan.step) * time.Millisecond
	q := telemetry.SummaryQuery{Metrics: metrics, Step: step, Range: telemetry.TimeRange{
		Start: time.UnixMilli(plan.first - plan.window).UTC(),
		End:   time.UnixMilli(plan.last).UTC().Add(-time.Microsecond), // the bucket at last is in no window
	}}
	for _, d := range devices {
		byKey[d.key] = d
		q.GPUs = append(q.GPUs, d.key)
	}
	value := tierValues[plan.fn]
	var read []tierSeries
	unevenDevices := map[string]bool{}
	var b labels.ScratchBuilder
	err := qr.q.Tiers.Summaries(ctx, q, func(ss telemetry.SummarySeries) error {
		ls := byKey[ss.GPU].seriesLabels(&b, telemetry.Series{GPU: ss.GPU, Metric: ss.Metric,
			Container: ss.Container, Pod: ss.Pod, Namespace: ss.Namespace})
		if !matchesAll(ms, ls) {
			return nil
		}
		if err := qr.count(len(ss.Summaries)); err != nil {
			return err
		}
		pts := make([]promql.FPoint, len(ss.Summaries))
		for i, s := range ss.Summaries {
			pts[i] = promql.FPoint{T: s.Start/1000 + plan.step, F: value(s)}
		}
		ts := tierSeries{gpu: ss.GPU, series: promql.NewStorageSeries(promql.Series{Metric: ls, Floats: pts}),
			uneven: plan.fn == "avg_over_time" && !evenWindows(ss.Summaries, plan)}
		if ts.uneven {
			unevenDevices[ss.GPU] = true
		}
		read = append(read, ts)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var notes annotations.Annotations
	tier := model.Duration(step)
	notes.Add(fmt.Errorf("%w: %s read the %s downsampled tier, whose buckets [t, t+%s) count a sample exactly at t in the window starting there "+
		"(max_source_resolution=raw reads the samples)", annotations.PromQLInfo, plan.fn, tier, tier))
	fromSamples := len(unevenDevices) > 0
	if fromSamples {
		deleted, err := qr.q.Tiers.DeletedBefore(ctx)
		if err != nil {
			return nil, nil, err
		}
		if !deleted.IsZero() && time.UnixMilli(plan.start).Before(deleted) {
			fromSamples = false
			notes.Add(fmt.Errorf("%w: avg_over_time averaged %s buckets holding unequal numbers of samples as if equal, the samples before %s being deleted (retention)",
				annotations.PromQLWarning, model.Duration(step), deleted.UTC().Format(time.RFC3339)))
		}
	}
	var out []storage.Series
	for _, ts := range read {
		if !fromSamples || !unevenDevices[ts.gpu] {
			out = append(out, ts.series)
		}
	}
	if fromSamples {
		var again []*catalogDevice
		for key := range unevenDevices {
			again = append(again, byKey[key])
		}
		raw, err := qr.selectSamples(ctx, cat, metrics, again, ms, plan.start, plan.end, false)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, raw...)
	}
	return out, notes, nil
}

// beyondRetention warns when samples read from mint (ms) on reach back before the oldest
// one kept: windows there are empty or short, not because nothing happened.
func (qr *querier) beyondRetention(ctx context.Context, mint int64) (annotations.Annotations, error) {
	if qr.q.Tiers == nil {
		return nil, nil
	}
	deleted, err := qr.q.Tiers.DeletedBefore(ctx)
	if err != nil || deleted.IsZero() || !time.UnixMilli(mint).Before(deleted) {
		return nil, err
	}
	var notes annotations.Annotations
	notes.Add(fmt.Errorf("%w: samples before %s are deleted (retention): windows reaching back before then are empty or short; "+
		"avg, sum, min, max and last_over_time over whole buckets of %s read the downsampled tiers, which keep them longer",
		annotations.PromQLWarning, deleted.UTC().Format(time.RFC3339), tierNames(qr.q.Tiers.SummarySteps())))
	return notes, nil
}

// tierNames is "5m or 1h".
func tierNames(steps []time.Duration) string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = model.Duration(s).String()
	}
	return strings.Join(names, " or ")
}

// evenWindows tells whether every two buckets of a series that share one of plan's windows
// hold as many samples: what averaging their averages needs to equal averaging their samples.
func evenWindows(ss []telemetry.Summary, plan tierPlan) bool {
	span := (plan.window - plan.step) * 1000 // µs between the first and last bucket's starts in one window
	for i := 1; i < len(ss); i++ {
		if ss[i].Count != ss[i-1].Count && ss[i].Start-ss[i-1].Start <= span {
			return false
		}
	}
	return true
}
