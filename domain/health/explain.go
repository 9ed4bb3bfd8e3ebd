package health

import (
	"slices"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// The XIDs of a memory error, whose remedy the row remap state decides (NVIDIA's XID
// catalog, and its GPU memory error recovery guide): a remap pending is applied by a reset,
// a remap that failed leaves the GPU out of spare rows.
var memoryXIDs = []int{48, 63, 64, 94, 95}

// xidProfilingZero is the XID after which the profiling fields (DCGM_FI_PROF_*) can read 0
// while the GPU is busy, until it is reset (NVIDIA/DCGM #303).
const xidProfilingZero = 31

// Explain says what each of a device's events means and asks for — its Class, Action and
// Detail — from the XID catalog and the device's other fields (its series by metric, as
// Detect read them), and returns them without those of an aggregate ECC counter where the
// volatile one is reported too: the same errors, counted over the GPU's life.
func Explain(events []telemetry.Event, fields map[string][]telemetry.Series, c Catalog) []telemetry.Event {
	volatile := len(fields[fieldSBE]) > 0 || len(fields[fieldDBE]) > 0
	events = slices.DeleteFunc(events, func(e telemetry.Event) bool {
		return volatile && (e.Kind == KindECCSingle || e.Kind == KindECCDouble) && e.Reason == "aggregate"
	})
	events = countRepeats(events)
	for i := range events {
		e := &events[i]
		switch e.Kind {
		case KindXID:
			code := int(e.Value)
			if x, ok := c.Lookup(code); ok {
				e.Class, e.Action, e.Detail = x.Class, x.Action, x.Description
			} else {
				e.Detail = "not in the XID catalog"
			}
			if slices.Contains(memoryXIDs, code) {
				remapped(e, fields)
			}
			if code == xidProfilingZero {
				e.Detail += "; until the GPU is reset, profiling fields (DCGM_FI_PROF_*) may read 0 while it is busy"
			}
		case KindECCSingle:
			e.Class, e.Action, e.Detail = ClassHardware, ActionNone, "correctable (single-bit) ECC errors"
		case KindECCDouble:
			e.Class, e.Action, e.Detail = ClassHardware, ActionResetGPU, "uncorrectable (double-bit) ECC errors"
			remapped(e, fields)
		case KindRowRemap:
			e.Class, e.Action, e.Detail = ClassHardware, ActionIsolate, "row remapping failed: the memory has no spare row left"
		case KindRemapPending:
			e.Class, e.Action, e.Detail = ClassHardware, ActionResetGPU, "rows are remapped at the next reset: reset the GPU to apply the remap"
		case KindThrottle:
			e.Action, e.Detail = ActionNone, "clocks slowed: "+e.Reason
			for _, r := range ThrottleReasons {
				if r.Name == e.Reason {
					e.Class = r.Class
				}
			}
		case KindPCIeReplay:
			e.Class, e.Action, e.Detail = ClassHardware, ActionNone, "PCIe packets retried: errors on the link"
		case KindNVLinkErrors:
			e.Class, e.Action, e.Detail = ClassHardware, ActionNone, "NVLink errors ("+e.Reason+")"
			if e.Reason == "recovery" {
				e.Action, e.Detail = ActionResetGPU, "NVLink recovery errors: a link went down and was retrained"
			}
		}
	}
	return events
}

// countRepeats gives each XID the sticky gauge reports the occurrences of its code that
// dcgm-exporter's count (DCGM_EXP_XID_ERRORS_COUNT) saw during it, and drops the count's
// events it covers: one event, with the gauge's start and end and every repeat counted.
func countRepeats(events []telemetry.Event) []telemetry.Event {
	counted := make([]bool, len(events))
	for i := range events {
		g := &events[i]
		if g.Field != fieldXID {
			continue
		}
		n := 0
		for j, c := range events {
			if c.Reason != g.Reason || counted[j] || !IsXIDCount(c.Field) ||
				c.Start.After(g.End) || c.End.Before(g.Start) {
				continue
			}
			n += c.Count
			counted[j] = true
		}
		if n > 0 {
			g.Count = n
		}
	}
	out := events[:0]
	for i, e := range events {
		if !counted[i] {
			out = append(out, e)
		}
	}
	return out
}

// remapped sets what a memory error asks for by the row remap state during it: a remap that
// failed takes the GPU out of service, one pending asks for a reset.
func remapped(e *telemetry.Event, fields map[string][]telemetry.Series) {
	during := func(field string) bool {
		from, to := e.Start.UnixMicro(), e.End.UnixMicro()
		for _, s := range fields[field] {
			for _, p := range s.Points {
				if p.Time >= from && p.Time <= to && p.Value != 0 {
					return true
				}
			}
		}
		return false
	}
	switch {
	case during(fieldRowRemap):
		e.Action, e.Detail = ActionIsolate, e.Detail+"; row remapping failed: take the GPU out of service (RMA)"
	case during(fieldRemapPending):
		e.Action, e.Detail = ActionResetGPU, e.Detail+"; a row remap is pending: reset the GPU to apply it"
	}
}
