package telemetry

import "time"

// Event is a span of time during which a device was in some state worth knowing of: an XID
// error reported, ECC errors counted, a row remap failed, clocks throttled, or the device
// idle. The gauges DCGM exports keep only their latest value; events keep the history.
type Event struct {
	GPU
	Kind   string // one of the health package's kinds: xid, ecc_sbe, ecc_dbe, row_remap_failure, row_remap_pending, throttle, pcie_replay, nvlink_errors, idle
	Field  string // the DCGM field it was read from, as stored
	Reason string // the XID code, the throttle reason (hw_thermal_slowdown, …), the counter (volatile, crc_flit, …), or for idle whether a pod holds the device
	// Start is the first sample in the state; End the first sample out of it, or the last in
	// it when Ongoing: the window, or the device's reports, ended first. LastSeen is the last
	// sample in it.
	Start, End, LastSeen time.Time
	Ongoing              bool
	Value                float64 // the XID code, the errors counted, the throttle reasons' bitmask, the mean utilisation
	Samples              int     // in the state
	Count                int     // occurrences: 1 for a state, the errors counted for a counter
	// Class is what failed (app, driver, hardware) and Action what to do (none, restart_app,
	// reset_gpu, reboot_node, isolate), as the health package's catalog and the device's
	// other fields say; Detail says more in words. Resolution is how the event ended, when
	// its samples say (cleared, replaced, cancelled, applied, reset).
	Class, Action, Detail string
	Resolution            string
	Pod                   string // the workload the samples were attributed to, if any
	Namespace             string
	Container             string
}

// EventQuery selects events overlapping a window, of some devices (all, one host, one
// model, one device by key), of some kinds, classes and actions (all when empty), and
// only those still going on at the window's end when Open.
type EventQuery struct {
	Range    TimeRange
	Hostname string
	Model    string
	GPU      string
	Kinds    []string
	Classes  []string
	Actions  []string
	Open     bool
}

// OutlierQuery asks which devices stand out of their peers over a window: of all devices,
// one host's or one model's; on some signals (all when empty); grouped by model, host and
// each of Labels; scoring above Threshold.
type OutlierQuery struct {
	Range     TimeRange
	Hostname  string
	Model     string
	Signals   []string
	Labels    []string
	Threshold float64
}

// IdleQuery asks for the spans of a window in which devices' utilisation stayed under
// Threshold (in %) for at least For.
type IdleQuery struct {
	Range     TimeRange
	Hostname  string
	Model     string
	Threshold float64
	For       time.Duration
}
