// Package health turns DCGM's gauges into events with a start and an end: XID errors, ECC
// errors, row remap failures, clock throttling and idleness, read off a device's series.
package health

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// The kinds of event.
const (
	KindXID       = "xid"
	KindECCSingle = "ecc_sbe"
	KindECCDouble = "ecc_dbe"
	KindRowRemap  = "row_remap_failure"
	KindThrottle  = "throttle"
	KindIdle      = "idle"
)

// Kinds lists the kinds of health event (idle aside, which has its own query).
var Kinds = []string{KindXID, KindECCSingle, KindECCDouble, KindRowRemap, KindThrottle}

// The DCGM fields events are read from.
const (
	fieldXID         = "DCGM_FI_DEV_XID_ERRORS"
	fieldSBE         = "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"
	fieldDBE         = "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"
	fieldRowRemap    = "DCGM_FI_DEV_ROW_REMAP_FAILURE"
	fieldThrottle    = "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"
	fieldClocksEvent = "DCGM_FI_DEV_CLOCKS_EVENT_REASONS" // its name since DCGM 3.3
	// UtilField is what idleness is judged by.
	UtilField = "DCGM_FI_DEV_GPU_UTIL"
)

// kindOf maps each field read to its kind of event.
var kindOf = map[string]string{
	fieldXID: KindXID, fieldSBE: KindECCSingle, fieldDBE: KindECCDouble, fieldRowRemap: KindRowRemap,
	fieldThrottle: KindThrottle, fieldClocksEvent: KindThrottle,
}

// Fields returns the DCGM fields events of the given kinds are read from (every kind's when
// none).
func Fields(kinds []string) []string {
	var out []string
	for _, f := range []string{fieldXID, fieldSBE, fieldDBE, fieldRowRemap, fieldThrottle, fieldClocksEvent} {
		if len(kinds) == 0 || slices.Contains(kinds, kindOf[f]) {
			out = append(out, f)
		}
	}
	return out
}

// ThrottleReasons names the bits of the throttle reasons bitmask, as NVML's
// nvmlClocksEventReasons defines them. GPU idle (0x1) is left out: it is the normal state of
// an idle GPU, not a slowdown.
var ThrottleReasons = []struct {
	Bit  uint64
	Name string
}{
	{0x2, "applications_clocks_setting"},
	{0x4, "sw_power_cap"},
	{0x8, "hw_slowdown"},
	{0x10, "sync_boost"},
	{0x20, "sw_thermal_slowdown"},
	{0x40, "hw_thermal_slowdown"},
	{0x80, "hw_power_brake_slowdown"},
	{0x100, "display_clock_setting"},
}

// Detect returns the events of one series, in order of start (for throttling, of start
// within each reason). A series of a field no event is read from has none.
func Detect(s telemetry.Series) []telemetry.Event {
	pts := s.Points
	var out []telemetry.Event
	emit := func(kind, reason string, value func(first, last int) float64) func(string, int, int) {
		return func(r string, first, last int) {
			e := event(s, kind, cmp.Or(r, reason), first, last)
			e.Value = value(first, last)
			out = append(out, e)
		}
	}
	at := func(first, _ int) float64 { return pts[first].Value }
	switch kind := kindOf[s.Metric]; kind {
	case KindXID:
		spans(pts, func(i int) (string, bool) {
			return strconv.FormatFloat(pts[i].Value, 'f', -1, 64), pts[i].Value != 0
		}, emit(kind, "", at))
	case KindRowRemap:
		spans(pts, func(i int) (string, bool) { return "", pts[i].Value != 0 }, emit(kind, "", at))
	case KindECCSingle, KindECCDouble:
		// A counter: each rise is errors counted since the sample before.
		spans(pts, func(i int) (string, bool) { return "", i > 0 && pts[i].Value > pts[i-1].Value },
			emit(kind, "", func(first, last int) float64 { return pts[last].Value - pts[first-1].Value }))
	case KindThrottle:
		for _, r := range ThrottleReasons {
			spans(pts, func(i int) (string, bool) { return "", uint64(pts[i].Value)&r.Bit != 0 }, emit(kind, r.Name, at))
		}
	}
	return out
}

// Idle returns the spans of a utilisation series under threshold, their reason "allocated"
// when a pod holds the device, else "unallocated", their value the mean utilisation. How
// long one lasted is known once Settle has ended it.
func Idle(s telemetry.Series, threshold float64) []telemetry.Event {
	reason := "unallocated"
	if s.Pod != "" {
		reason = "allocated"
	}
	var out []telemetry.Event
	spans(s.Points, func(i int) (string, bool) { return reason, s.Points[i].Value < threshold }, func(r string, first, last int) {
		e := event(s, KindIdle, r, first, last)
		var sum float64
		for _, p := range s.Points[first : last+1] {
			sum += p.Value
		}
		e.Value = sum / float64(last-first+1)
		out = append(out, e)
	})
	return out
}

// event is the event of points [first, last] of s: it ends at the first point out of the
// state, or is ongoing at the last.
func event(s telemetry.Series, kind, reason string, first, last int) telemetry.Event {
	e := telemetry.Event{Kind: kind, Reason: reason, Start: micros(s.Points[first].Time), Samples: last - first + 1,
		Pod: s.Pod, Namespace: s.Namespace, Container: s.Container}
	if last+1 < len(s.Points) {
		e.End = micros(s.Points[last+1].Time)
	} else {
		e.End, e.Ongoing = micros(s.Points[last].Time), true
	}
	return e
}

func micros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// spans calls fn with each maximal run of points in one state: those for which state says
// true with the same reason.
func spans(pts []telemetry.Point, state func(i int) (reason string, in bool), fn func(reason string, first, last int)) {
	first, current := -1, ""
	for i := range pts {
		reason, in := state(i)
		if first >= 0 && (!in || reason != current) {
			fn(current, first, i-1)
			first = -1
		}
		if in && first < 0 {
			first, current = i, reason
		}
	}
	if first >= 0 {
		fn(current, first, len(pts)-1)
	}
}

// Settle ends the ongoing events of one device's field where the field goes on in another
// of the device's series — the samples of another workload — rather than stopping: times
// are every sample time of the field, of any workload, sorted. Such an event ends at the
// first sample after its last.
func Settle(events []telemetry.Event, times []int64) {
	for i := range events {
		e := &events[i]
		if !e.Ongoing {
			continue
		}
		last := e.End.UnixMicro()
		if j, _ := slices.BinarySearch(times, last+1); j < len(times) {
			e.End, e.Ongoing = micros(times[j]), false
		}
	}
}
