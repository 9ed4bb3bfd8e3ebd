package query

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// outliersFromSamples is the longest window whose outliers are read from the samples where
// they are all kept: longer ones read the finest downsampled tier, a bucket per device and
// field every few minutes rather than every sample.
const outliersFromSamples = 24 * time.Hour

// OutlierReport is the devices that stand out of their peers, and what they were measured
// from: the samples (Step 0) or the downsampled tier of Step.
type OutlierReport struct {
	Outliers []health.Outlier
	Step     time.Duration
}

// Outliers returns the devices q selects whose signals over q.Range stand out of their
// peers' (health.Outliers), the highest score first. MIG instances are left out: the errors
// and temperatures are their GPU's. It reads the samples over a day or less whose samples
// are all kept, the finest downsampled tier otherwise (health.MeasureSummaries). A bad
// query matches telemetry.ErrInvalid.
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
	if out.Step, err = f.outlierStep(ctx, q.Range); err != nil {
		return out, err
	}
	if out.Step > 0 {
		err = f.byDeviceSummaries(ctx, sel, q.Range, health.SignalFields, out.Step, func(g *telemetry.GPU, fields map[string][]telemetry.SummarySeries) {
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

// outlierStep is the step of the tier outliers over r are read from, 0 for the samples: the
// finest tier for a window longer than outliersFromSamples or reaching back before the
// oldest sample kept.
func (f *Fleet) outlierStep(ctx context.Context, r telemetry.TimeRange) (time.Duration, error) {
	if f.tiers == nil || r.Start.IsZero() || r.End.IsZero() {
		return 0, nil
	}
	step := f.tiers.SummarySteps()[0]
	if r.End.Sub(r.Start) > outliersFromSamples {
		return step, nil
	}
	deleted, err := f.tiers.DeletedBefore(ctx)
	if err != nil || deleted.IsZero() || !r.Start.Before(deleted) {
		return 0, err
	}
	return step, nil
}

// byDeviceSummaries calls fn with each device sel selects and its buckets of step by
// metric within r.
func (f *Fleet) byDeviceSummaries(ctx context.Context, sel telemetry.GPUFilter, r telemetry.TimeRange, metrics []string, step time.Duration,
	fn func(*telemetry.GPU, map[string][]telemetry.SummarySeries)) error {
	devices, sq, err := f.list(ctx, sel, r, metrics)
	if err != nil || len(devices) == 0 {
		return err
	}
	byDevice := make(map[string]map[string][]telemetry.SummarySeries, len(devices))
	err = f.tiers.Summaries(ctx, telemetry.SummaryQuery{GPUs: sq.GPUs, Range: r, Metrics: metrics, Step: step}, func(s telemetry.SummarySeries) error {
		if byDevice[s.GPU] == nil {
			byDevice[s.GPU] = map[string][]telemetry.SummarySeries{}
		}
		byDevice[s.GPU][s.Metric] = append(byDevice[s.GPU][s.Metric], s)
		return nil
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
