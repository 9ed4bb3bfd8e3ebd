package query

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// usageFields are the fields a usage report reads.
var usageFields = slices.Concat(usage.Fields, usage.EfficiencyFields)

// MaxUsageGap bounds how long one sample may stand for in a usage report.
const MaxUsageGap = 24 * time.Hour

// usageFromRecords is the shortest window whose whole hours a usage report reads from the
// workload recorder's hourly sums rather than from the samples: shorter ones hold few
// enough samples to read, unless retention has deleted them.
const usageFromRecords = 6 * time.Hour

// WithRecords has usage reports over long windows sum the hours the workload recorder
// accounted (the same sums a report of the samples makes, kept after the samples), and read
// the samples only for the window's edges and the minutes not recorded yet.
func (f *Fleet) WithRecords(records ports.WorkloadStore) *Fleet {
	f.records = records
	return f
}

// Usage reports what each group used over q.Range (see package usage): GPU-hours, mean
// utilisation, energy, peak memory and how well it used what it held (the profiling fields
// as shares of the model's peaks, and a class), by group name. A bad query matches
// telemetry.ErrInvalid.
func (f *Fleet) Usage(ctx context.Context, q telemetry.UsageQuery) (telemetry.UsageReport, error) {
	var out telemetry.UsageReport
	name, err := groupName(q.By)
	if err != nil {
		return out, err
	}
	switch {
	case q.Gap <= 0:
		q.Gap = usage.DefaultGap
	case q.Gap > MaxUsageGap:
		return out, telemetry.Invalid("gap", "must be at most %s, got %s", MaxUsageGap, q.Gap)
	}
	if q.Range.Start.IsZero() || q.Range.End.IsZero() {
		return out, telemetry.Invalid("start_time", "a window needs both ends")
	}
	report := usage.New(q.Range, q.Gap)
	raw := []telemetry.TimeRange{q.Range}
	fromRecords := f.records != nil && q.Gap == usage.DefaultGap && !strings.HasPrefix(string(q.By), telemetry.LabelGrouping)
	if fromRecords && q.Range.End.Sub(q.Range.Start) < usageFromRecords {
		if fromRecords, err = f.samplesGone(ctx, q.Range.Start); err != nil {
			return out, err
		}
	}
	if fromRecords {
		if raw, out.Warnings, err = f.recordedUsage(ctx, q, report, name); err != nil {
			return out, err
		}
	}
	for _, r := range raw {
		part := usage.New(r, q.Gap)
		var shares map[string]float64
		// A gap either side: the samples standing at the start, and those that end the time
		// of the last ones before the end, as in every part of a report split in time.
		read := telemetry.TimeRange{Start: usage.ReadFrom(r, q.Gap), End: r.End.Add(q.Gap)}
		err = f.byDevice(ctx, telemetry.GPUFilter{Hostname: q.Hostname, Model: q.Model}, read, usageFields,
			func(devices []telemetry.GPU) { shares = usage.Shares(devices) },
			func(device *telemetry.GPU, fields map[string][]telemetry.Series) {
				d := usage.Device{Key: device.Key(), Share: shares[device.Key()], Model: device.ModelName}
				part.AddDevice(d, fields, func(s telemetry.Series) (string, bool) {
					return name(device, s), q.Namespace == "" || s.Namespace == q.Namespace
				})
			})
		if err != nil {
			return out, err
		}
		report.AddReport(part)
	}
	out.Groups = report.Usage()
	return out, nil
}

// samplesGone reports whether retention has deleted samples from after start: a short
// window is then summed from the recorded hours too, not from what is left.
func (f *Fleet) samplesGone(ctx context.Context, start time.Time) (bool, error) {
	if f.tiers == nil {
		return false, nil
	}
	deleted, err := f.tiers.DeletedBefore(ctx)
	return start.Before(deleted), err
}

// recordedUsage adds to report the recorded hours inside q.Range and returns the parts of
// it left for the samples to answer: its edges, and what is not recorded yet. Where the
// samples of the window's first hour are deleted, that hour is answered whole from its
// record, and a warning says so.
func (f *Fleet) recordedUsage(ctx context.Context, q telemetry.UsageQuery, report *usage.Report,
	name func(*telemetry.GPU, telemetry.Series) string) ([]telemetry.TimeRange, []string, error) {
	hours := telemetry.TimeRange{Start: q.Range.Start.Truncate(time.Hour), End: q.Range.End.Truncate(time.Hour)}
	var warnings []string
	if hours.Start.Before(q.Range.Start) {
		hours.Start = hours.Start.Add(time.Hour)
		if f.tiers != nil {
			deleted, err := f.tiers.DeletedBefore(ctx)
			if err != nil {
				return nil, nil, err
			}
			if q.Range.Start.Before(deleted) {
				hours.Start = hours.Start.Add(-time.Hour)
				warnings = append(warnings, fmt.Sprintf("samples before %s are no longer kept: usage is counted from %s, the start of the hour of start_time",
					deleted.UTC().Format(time.RFC3339), hours.Start.UTC().Format(time.RFC3339)))
			}
		}
	}
	if hours.End.Sub(hours.Start) < time.Hour {
		return []telemetry.TimeRange{q.Range}, nil, nil
	}
	parts, from, until, err := f.records.UsageParts(ctx, telemetry.UsagePartQuery{Range: hours, Hostname: q.Hostname, Model: q.Model,
		Namespace: q.Namespace, Per: q.By})
	if err != nil {
		return nil, nil, err
	}
	if !until.After(from) {
		return []telemetry.TimeRange{q.Range}, nil, nil // nothing recorded there yet
	}
	if from.Before(hours.Start) {
		warnings = []string{fmt.Sprintf("the hourly usage sums before %s are no longer kept (--retention-5m), nor the samples: usage is counted from %s, the start of the day of start_time",
			hours.Start.UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339))}
		hours.Start = from
	}
	for _, p := range parts {
		t := &usage.Tally{Seconds: p.Seconds, UtilSeconds: p.UtilSeconds, UtilWeighted: p.UtilWeighted, Joules: p.Joules,
			PeakMemory: p.PeakMemory, Memory: !math.IsNaN(p.PeakMemory), Samples: p.Samples, HeldSeconds: p.HeldSeconds,
			Profiling: p.Profiling}
		report.AddTally(p.GPU.Key(), name(&p.GPU, telemetry.Series{Namespace: p.Namespace, Pod: p.Pod}), p.Signal, t)
	}
	var raw []telemetry.TimeRange
	if q.Range.Start.Before(hours.Start) {
		raw = append(raw, telemetry.TimeRange{Start: q.Range.Start, End: hours.Start})
	}
	if until.Before(q.Range.End) {
		raw = append(raw, telemetry.TimeRange{Start: until, End: q.Range.End})
	}
	return raw, warnings, nil
}
