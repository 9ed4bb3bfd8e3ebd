// Package usage accounts for what groups of workloads or devices used over a window: GPU
// time, mean utilisation, energy and peak memory, from the samples DCGM reports.
//
// A sample stands for the time from it to the device's next sample of the same field,
// whatever workload that one is attributed to, but for Gap at most: a device that stops
// reporting stops counting, as PromQL's lookback stops a series. Only the part of that
// time inside the window counts, so the reports of adjacent windows add up to the report
// of both; a peak is of the samples standing in the window, or in it.
package usage

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// The fields a report reads.
const (
	UtilField   = "DCGM_FI_DEV_GPU_UTIL"    // %: what GPU time and mean utilisation are read from
	PowerField  = "DCGM_FI_DEV_POWER_USAGE" // W: energy is its integral over time
	MemoryField = "DCGM_FI_DEV_FB_USED"     // MiB: its peak
)

// Fields are the fields a report reads.
var Fields = []string{UtilField, PowerField, MemoryField}

// DefaultGap is the longest a sample stands for unless told otherwise: PromQL's lookback.
const DefaultGap = 5 * time.Minute

// Report tallies devices' samples in groups over a window.
type Report struct {
	start, end, gap int64 // Unix microseconds
	groups          map[string]*tally
}

type tally struct {
	devices      map[string]bool
	seconds      float64 // covered by utilisation samples
	utilSeconds  float64 // of which with a value (not a blank)
	utilWeighted float64 // utilisation × seconds
	joules       float64
	peakMemory   float64
	memory       bool // whether peakMemory was seen
	samples      int64
}

// New returns an empty report of window r; samples stand for gap at most.
func New(r telemetry.TimeRange, gap time.Duration) *Report {
	return &Report{start: r.Start.UnixMicro(), end: r.End.UnixMicro(), gap: gap.Microseconds(), groups: map[string]*tally{}}
}

// ReadFrom is how early a report must read for the first samples of its window: the
// sample standing at the window's start may be up to gap before it.
func ReadFrom(r telemetry.TimeRange, gap time.Duration) time.Time { return r.Start.Add(-gap) }

// Add tallies one device's series of one field (a series per workload it was attributed
// to), each sample in the group group names; a sample whose group is not ok is left out,
// though it still ends the time the sample before it stands for.
func (r *Report) Add(device, field string, list []telemetry.Series, group func(telemetry.Series) (name string, ok bool)) {
	type at struct {
		telemetry.Point
		series int
	}
	var all []at
	for i, s := range list {
		for _, p := range s.Points {
			all = append(all, at{p, i})
		}
	}
	slices.SortStableFunc(all, func(a, b at) int { return cmp.Compare(a.Time, b.Time) })
	names := make([]string, len(list))
	oks := make([]bool, len(list))
	for i, s := range list {
		names[i], oks[i] = group(s)
	}
	for i, p := range all {
		if !oks[p.series] {
			continue
		}
		until := min(p.Time+r.gap, r.end)
		if i+1 < len(all) {
			until = min(until, all[i+1].Time)
		}
		seconds := float64(max(until-max(p.Time, r.start), 0)) / 1e6
		if seconds == 0 && (p.Time < r.start || p.Time > r.end) {
			continue
		}
		t := r.group(names[p.series])
		t.devices[device] = true
		finite := !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0)
		switch field {
		case UtilField:
			t.seconds += seconds
			t.samples++
			if finite {
				t.utilSeconds += seconds
				t.utilWeighted += p.Value * seconds
			}
		case PowerField:
			if finite {
				t.joules += p.Value * seconds
			}
		case MemoryField:
			if finite && (!t.memory || p.Value > t.peakMemory) {
				t.peakMemory, t.memory = p.Value, true
			}
		}
	}
}

func (r *Report) group(name string) *tally {
	t := r.groups[name]
	if t == nil {
		t = &tally{devices: map[string]bool{}}
		r.groups[name] = t
	}
	return t
}

// Usage returns each group's usage, by name.
func (r *Report) Usage() []telemetry.Usage {
	out := make([]telemetry.Usage, 0, len(r.groups))
	for name, t := range r.groups {
		u := telemetry.Usage{Group: name, Devices: len(t.devices), GPUHours: t.seconds / 3600,
			EnergyKWh: t.joules / 3.6e6, Samples: t.samples, PeakMemory: math.NaN(), MeanUtil: math.NaN()}
		if t.utilSeconds > 0 {
			u.MeanUtil = t.utilWeighted / t.utilSeconds
		}
		if t.memory {
			u.PeakMemory = t.peakMemory
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b telemetry.Usage) int { return cmp.Compare(a.Group, b.Group) })
	return out
}
