package query

import (
	"context"
	"slices"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
)

// Efficiency reports how well each group used what it held over q.Range (usage.Efficiency):
// the profiling fields as shares of the model's peaks, over the time the group held its
// devices as the usage report accounts it (a shared GPU's time split among its holders), and
// a class. It reads the samples. A bad query matches telemetry.ErrInvalid.
func (f *Fleet) Efficiency(ctx context.Context, q telemetry.UsageQuery) ([]usage.Efficiency, error) {
	name, err := groupName(q.By)
	if err != nil {
		return nil, err
	}
	if q.Gap <= 0 {
		q.Gap = usage.DefaultGap
	}
	if q.Range.Start.IsZero() || q.Range.End.IsZero() {
		return nil, telemetry.Invalid("start_time", "a window needs both ends")
	}
	report := usage.New(q.Range, q.Gap)
	var shares map[string]float64
	read := telemetry.TimeRange{Start: usage.ReadFrom(q.Range, q.Gap), End: q.Range.End.Add(q.Gap)}
	fields := slices.Concat(usage.Fields, usage.EfficiencyFields)
	err = f.byDevice(ctx, telemetry.GPUFilter{Hostname: q.Hostname, Model: q.Model}, read, fields,
		func(devices []telemetry.GPU) { shares = usage.Shares(devices) },
		func(device *telemetry.GPU, series map[string][]telemetry.Series) {
			d := usage.Device{Key: device.Key(), Share: shares[device.Key()], Model: device.ModelName}
			report.AddDevice(d, series, func(s telemetry.Series) (string, bool) {
				return name(device, s), q.Namespace == "" || s.Namespace == q.Namespace
			})
		})
	if err != nil {
		return nil, err
	}
	out := report.Efficiencies()
	if q.By == telemetry.GroupPod || q.By == telemetry.GroupNamespace {
		for i := range out {
			if out[i].Group == "" && out[i].Class == usage.ClassHeldNoKernels {
				out[i].Class = usage.ClassIdle // the time no workload held the devices: not held
			}
		}
	}
	return out, nil
}
