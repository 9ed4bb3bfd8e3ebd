package query

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// OutlierReport is the devices that stand out of their peers, and what they were measured
// from: the samples (Step 0) or the downsampled tier of Step.
type OutlierReport struct {
	Outliers []health.Outlier
	Step     time.Duration
}

// Outliers returns the devices q selects whose signals over q.Range stand out of their
// peers' (health.Outliers), the highest score first. MIG instances are left out: the errors
// and temperatures are their GPU's. It reads the samples where they are all kept, the
// finest downsampled tier over a window reaching back before the oldest one
// (health.MeasureSummaries). A bad query matches telemetry.ErrInvalid.
func (f *Fleet) Outliers(ctx context.Context, q telemetry.OutlierQuery) (OutlierReport, error) {
	var out OutlierReport
	for _, s := range q.Signals {
		if !slices.Contains(health.Signals, s) {
			return out, telemetry.Invalid("signal", "%q is not one of %s", s, strings.Join(health.Signals, ", "))
		}
	}
	if q.Threshold <= 0 {
		return out, telemetry.Invalid("threshold", "must be a score above 0, got %g", q.Threshold)
	}
	sel := telemetry.GPUFilter{Hostname: q.Hostname, Model: q.Model}
	var devices []health.DeviceSignals
	keep := func(g *telemetry.GPU) bool { return g.Instance == "" && !g.IsTarget() }
	var err error
	var whole telemetry.TimeRange
	if out.Step, whole, err = f.beyondSamples(ctx, q.Range); err != nil {
		return out, err
	}
	if out.Step > 0 {
		err = f.byDeviceSummaries(ctx, sel, whole, health.SignalFields, out.Step, func(g *telemetry.GPU, fields map[string][]telemetry.SummarySeries) {
			if keep(g) {
				devices = append(devices, health.MeasureSummaries(*g, fields))
			}
		})
	} else {
		err = f.byDevice(ctx, sel, q.Range, health.SignalFields, nil, func(g *telemetry.GPU, fields map[string][]telemetry.Series) {
			if keep(g) {
				devices = append(devices, health.Measure(*g, fields))
			}
		})
	}
	if err != nil {
		return out, err
	}
	out.Outliers = health.Outliers(devices, health.PeerGroups(q.Labels...), q.Threshold)
	if len(q.Signals) > 0 {
		out.Outliers = slices.DeleteFunc(out.Outliers, func(o health.Outlier) bool { return !slices.Contains(q.Signals, o.Signal) })
	}
	return out, nil
}

// beyondSamples returns the step of the finest tier, and r widened to its whole buckets,
// where r reaches back before the oldest sample kept; 0 and r where the samples answer.
// Where they are kept, the samples answer faster than the buckets (docs/performance.md,
// "The fleet health views"); a bucket r cuts would be answered from its samples, which are
// gone (the range is inclusive: it ends a microsecond before a bucket).
func (f *Fleet) beyondSamples(ctx context.Context, r telemetry.TimeRange) (time.Duration, telemetry.TimeRange, error) {
	if r.Start.IsZero() || r.End.IsZero() {
		return 0, r, nil
	}
	if gone, err := f.samplesGone(ctx, r.Start); err != nil || !gone {
		return 0, r, err
	}
	step := f.tiers.SummarySteps()[0]
	return step, telemetry.TimeRange{Start: r.Start.Truncate(step), End: r.End.Add(step - 1).Truncate(step).Add(-time.Microsecond)}, nil
}

// byDeviceSummaries calls fn with each device sel selects that has buckets of step within
// r, and its buckets by metric.
func (f *Fleet) byDeviceSummaries(ctx context.Context, sel telemetry.GPUFilter, r telemetry.TimeRange, metrics []string, step time.Duration,
	fn func(*telemetry.GPU, map[string][]telemetry.SummarySeries)) error {
	var devices []telemetry.GPU
	byDevice := map[string]map[string][]telemetry.SummarySeries{}
	err := f.readSummaries(ctx, sel, r, metrics, step, func(d []telemetry.GPU) { devices = d }, func(s telemetry.SummarySeries) {
		if byDevice[s.GPU] == nil {
			byDevice[s.GPU] = map[string][]telemetry.SummarySeries{}
		}
		byDevice[s.GPU][s.Metric] = append(byDevice[s.GPU][s.Metric], s)
	})
	if err != nil {
		return err
	}
	for i := range devices {
		if fields := byDevice[devices[i].Key()]; fields != nil {
			fn(&devices[i], fields)
		}
	}
	return nil
}
