// Package health turns DCGM's gauges and counters into events with a start and an end — XID
// errors, ECC errors, row remapping, clock throttling, PCIe and NVLink errors, idleness — read
// off a device's series; says what each means and asks for (explain.go, from the XID
// catalog, catalog.go); and ranks each device's signals against its peers' (outliers.go).
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
	KindXID          = "xid"
	KindECCSingle    = "ecc_sbe"
	KindECCDouble    = "ecc_dbe"
	KindRowRemap     = "row_remap_failure"
	KindRemapPending = "row_remap_pending"
	KindThrottle     = "throttle"
	KindPCIeReplay   = "pcie_replay"
	KindNVLinkErrors = "nvlink_errors"
	KindIdle         = "idle"
)

// Kinds lists the kinds of health event (idle aside, which has its own query).
var Kinds = []string{KindXID, KindECCSingle, KindECCDouble, KindRowRemap, KindRemapPending, KindThrottle, KindPCIeReplay, KindNVLinkErrors}

// The DCGM fields events are read from.
const (
	fieldXID          = "DCGM_FI_DEV_XID_ERRORS"
	fieldSBE          = "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"
	fieldDBE          = "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"
	fieldSBEAgg       = "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL"
	fieldDBEAgg       = "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL"
	fieldRowRemap     = "DCGM_FI_DEV_ROW_REMAP_FAILURE"
	fieldRemapPending = "DCGM_FI_DEV_ROW_REMAP_PENDING"
	fieldThrottle     = "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"
	fieldClocksEvent  = "DCGM_FI_DEV_CLOCKS_EVENT_REASONS" // its name since DCGM 3.3
	fieldPCIeReplay   = "DCGM_FI_DEV_PCIE_REPLAY_COUNTER"
	fieldNVLinkFlit   = "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL"
	fieldNVLinkData   = "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL"
	fieldNVLinkReplay = "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL"
	fieldNVLinkRecov  = "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL"
	// UtilField is what idleness is judged by.
	UtilField = "DCGM_FI_DEV_GPU_UTIL"
)

// readField is a field events are read from.
type readField struct {
	field, kind, reason string
	counter             bool
}

// fieldsRead are the fields events are read from, each with its kind and, for counters,
// the reason its events carry.
var fieldsRead = []readField{
	{fieldXID, KindXID, "", false},
	{fieldSBE, KindECCSingle, "volatile", true},
	{fieldDBE, KindECCDouble, "volatile", true},
	{fieldSBEAgg, KindECCSingle, "aggregate", true},
	{fieldDBEAgg, KindECCDouble, "aggregate", true},
	{fieldRowRemap, KindRowRemap, "", false},
	{fieldRemapPending, KindRemapPending, "", false},
	{fieldThrottle, KindThrottle, "", false},
	{fieldClocksEvent, KindThrottle, "", false},
	{fieldPCIeReplay, KindPCIeReplay, "", true},
	{fieldNVLinkFlit, KindNVLinkErrors, "crc_flit", true},
	{fieldNVLinkData, KindNVLinkErrors, "crc_data", true},
	{fieldNVLinkReplay, KindNVLinkErrors, "replay", true},
	{fieldNVLinkRecov, KindNVLinkErrors, "recovery", true},
}

// Fields returns the DCGM fields events of the given kinds are read from (every kind's when
// none), and those that explain them: the row remap state, which decides what an XID of
// memory asks for.
func Fields(kinds []string) []string {
	var out []string
	for _, f := range fieldsRead {
		remap := f.field == fieldRowRemap || f.field == fieldRemapPending
		if len(kinds) == 0 || slices.Contains(kinds, f.kind) || remap && (slices.Contains(kinds, KindXID) || slices.Contains(kinds, KindECCDouble)) {
			out = append(out, f.field)
		}
	}
	return out
}

// ThrottleReasons names the bits of the throttle reasons bitmask, as NVML's
// nvmlClocksEventReasons defines them, with who sets them. GPU idle (0x1) is left out: it
// is the normal state of an idle GPU, not a slowdown.
var ThrottleReasons = []struct {
	Bit   uint64
	Name  string
	Class string
}{
	{0x2, "applications_clocks_setting", ClassApp},
	{0x4, "sw_power_cap", ClassDriver},
	{0x8, "hw_slowdown", ClassHardware},
	{0x10, "sync_boost", ClassApp},
	{0x20, "sw_thermal_slowdown", ClassHardware},
	{0x40, "hw_thermal_slowdown", ClassHardware},
	{0x80, "hw_power_brake_slowdown", ClassHardware},
	{0x100, "display_clock_setting", ClassApp},
}

// How an event ended, when its samples say.
const (
	ResolvedCleared   = "cleared"   // the gauge went back to 0: the GPU was reset, or the driver reloaded
	ResolvedReplaced  = "replaced"  // another XID took the gauge's place; this one may still stand
	ResolvedCancelled = "cancelled" // a later code undoes it: Xid 162 after 163
	ResolvedApplied   = "applied"   // a pending row remap was applied (by a reset)
	ResolvedReset     = "reset"     // an error counter went back to 0: a reset or a driver reload
)

// fieldXIDCount is dcgm-exporter's count of each XID code in a sliding window
// (--xid-count-window-size), a series a code: the repeats the sticky XID gauge hides. The
// store keeps a code's series as a metric of its own (telemetry.FoldMetric).
const fieldXIDCount = "DCGM_EXP_XID_ERRORS_COUNT"

// IsXIDCount tells a stored metric of DCGM_EXP_XID_ERRORS_COUNT's, a code's.
func IsXIDCount(metric string) bool {
	family, _, ok := telemetry.UnfoldMetric(metric)
	return ok && family == fieldXIDCount
}

// Detect returns the events of one series, in order of start (for throttling, of start
// within each reason): a gauge's spans in one state, a counter's runs of rises. A series of
// a field no event is read from has none. What the catalog and the device's other fields
// say of them, Explain adds.
func Detect(s telemetry.Series) []telemetry.Event {
	pts := s.Points
	if family, code, ok := telemetry.UnfoldMetric(s.Metric); ok && family == fieldXIDCount {
		return xidCounts(s, code.Value)
	}
	i := slices.IndexFunc(fieldsRead, func(f readField) bool { return f.field == s.Metric })
	if i < 0 {
		return nil
	}
	read := fieldsRead[i]
	var out []telemetry.Event
	emit := func(reason string, value func(first, last int) float64) func(string, int, int) {
		return func(r string, first, last int) {
			e := event(s, read.kind, cmp.Or(r, reason), first, last)
			e.Value = value(first, last)
			e.Count = 1
			out = append(out, e)
		}
	}
	at := func(first, _ int) float64 { return pts[first].Value }
	switch {
	case read.counter:
		// Each rise is errors counted since the sample before; a fall is the counter reset.
		spans(pts, func(i int) (string, bool) { return "", i > 0 && pts[i].Value > pts[i-1].Value },
			func(r string, first, last int) {
				e := event(s, read.kind, read.reason, first, last)
				e.Value = pts[last].Value - pts[first-1].Value
				e.Count = int(e.Value)
				if e.Count < 1 { // a counter of fractions, which no DCGM field is
					e.Count = 1
				}
				if !e.Ongoing && pts[last+1].Value < pts[last].Value {
					e.Resolution = ResolvedReset
				}
				out = append(out, e)
			})
	case read.kind == KindXID:
		spans(pts, func(i int) (string, bool) {
			return strconv.FormatFloat(pts[i].Value, 'f', -1, 64), pts[i].Value != 0
		}, func(r string, first, last int) {
			emit("", at)(r, first, last)
			e := &out[len(out)-1]
			switch {
			case e.Ongoing:
			case pts[last+1].Value == 0:
				e.Resolution = ResolvedCleared
			case pts[first].Value == 163 && pts[last+1].Value == 162:
				e.Resolution = ResolvedCancelled
			default:
				e.Resolution = ResolvedReplaced
			}
		})
	case read.kind == KindRowRemap || read.kind == KindRemapPending:
		spans(pts, func(i int) (string, bool) { return "", pts[i].Value != 0 }, func(r string, first, last int) {
			emit("", at)(r, first, last)
			if e := &out[len(out)-1]; !e.Ongoing {
				e.Resolution = ResolvedCleared
				if read.kind == KindRemapPending {
					e.Resolution = ResolvedApplied
				}
			}
		})
	case read.kind == KindThrottle:
		for _, r := range ThrottleReasons {
			spans(pts, func(i int) (string, bool) { return "", uint64(pts[i].Value)&r.Bit != 0 }, emit(r.Name, at))
		}
	}
	return out
}

// xidCounts returns the events of a code's count of XIDs in dcgm-exporter's window: a span
// while the window holds some, counting each occurrence — the count at its first sample,
// then each rise (a fall is occurrences leaving the window).
func xidCounts(s telemetry.Series, code string) []telemetry.Event {
	value, err := strconv.ParseFloat(code, 64)
	if err != nil {
		return nil
	}
	pts := s.Points
	var out []telemetry.Event
	spans(pts, func(i int) (string, bool) { return code, pts[i].Value > 0 }, func(r string, first, last int) {
		e := event(s, KindXID, r, first, last)
		e.Value, e.Count = value, int(pts[first].Value)
		for i := first + 1; i <= last; i++ {
			if d := pts[i].Value - pts[i-1].Value; d > 0 {
				e.Count += int(d)
			}
		}
		out = append(out, e)
	})
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
	e := telemetry.Event{Kind: kind, Field: s.Metric, Reason: reason, Start: micros(s.Points[first].Time), Samples: last - first + 1,
		Pod: s.Pod, Namespace: s.Namespace, Container: s.Container}
	e.LastSeen = micros(s.Points[last].Time)
	if last+1 < len(s.Points) {
		e.End = micros(s.Points[last+1].Time)
	} else {
		e.End, e.Ongoing = e.LastSeen, true
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
