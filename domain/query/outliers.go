package query

import (
	"context"
	"slices"
	"strings"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Outliers returns the devices q selects whose signals over q.Range stand out of their
// peers' (health.Outliers), the highest score first. MIG instances are left out: the errors
// and temperatures are their GPU's. A bad query matches telemetry.ErrInvalid.
func (f *Fleet) Outliers(ctx context.Context, q telemetry.OutlierQuery) ([]health.Outlier, error) {
	for _, s := range q.Signals {
		if !slices.Contains(health.Signals, s) {
			return nil, telemetry.Invalid("signal", "%q is not one of %s", s, strings.Join(health.Signals, ", "))
		}
	}
	if q.Threshold <= 0 {
		return nil, telemetry.Invalid("threshold", "must be a score above 0, got %g", q.Threshold)
	}
	sel := telemetry.GPUFilter{Hostname: q.Hostname, Model: q.Model}
	var devices []health.DeviceSignals
	err := f.byDevice(ctx, sel, q.Range, health.SignalFields, nil, func(g *telemetry.GPU, fields map[string][]telemetry.Series) {
		if g.Instance == "" && !g.IsTarget() {
			devices = append(devices, health.Measure(*g, fields))
		}
	})
	if err != nil {
		return nil, err
	}
	out := health.Outliers(devices, health.PeerGroups(q.Labels...), q.Threshold)
	if len(q.Signals) > 0 {
		out = slices.DeleteFunc(out, func(o health.Outlier) bool { return !slices.Contains(q.Signals, o.Signal) })
	}
	return out, nil
}
