package query

import (
	"context"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
)

// MaxUsageGap bounds how long one sample may stand for in a usage report.
const MaxUsageGap = 24 * time.Hour

// Usage reports what each group used over q.Range (see package usage): GPU-hours, mean
// utilisation, energy and peak memory, by group name. A bad query matches
// telemetry.ErrInvalid.
func (f *Fleet) Usage(ctx context.Context, q telemetry.UsageQuery) ([]telemetry.Usage, error) {
	name, err := groupName(q.By)
	if err != nil {
		return nil, err
	}
	switch {
	case q.Gap <= 0:
		q.Gap = usage.DefaultGap
	case q.Gap > MaxUsageGap:
		return nil, telemetry.Invalid("gap", "must be at most %s, got %s", MaxUsageGap, q.Gap)
	}
	if q.Range.Start.IsZero() || q.Range.End.IsZero() {
		return nil, telemetry.Invalid("start_time", "a window needs both ends")
	}
	report := usage.New(q.Range, q.Gap)
	read := telemetry.TimeRange{Start: usage.ReadFrom(q.Range, q.Gap), End: q.Range.End}
	var shares map[string]float64
	err = f.byDevice(ctx, telemetry.GPUFilter{Hostname: q.Hostname, Model: q.Model}, read, usage.Fields,
		func(devices []telemetry.GPU) { shares = usage.Shares(devices) },
		func(device *telemetry.GPU, fields map[string][]telemetry.Series) {
			d := usage.Device{Key: device.Key(), Share: shares[device.Key()]}
			report.AddDevice(d, fields, func(s telemetry.Series) (string, bool) {
				return name(device, s), q.Namespace == "" || s.Namespace == q.Namespace
			})
		})
	if err != nil {
		return nil, err
	}
	return report.Usage(), nil
}
