package telemetry

import "time"

// Event is a span of time during which a device was in some state worth knowing of: an XID
// error reported, ECC errors counted, a row remap failed, clocks throttled, or the device
// idle. The gauges DCGM exports keep only their latest value; events keep the history.
type Event struct {
	GPU
	Kind   string // one of the health package's kinds: xid, ecc_sbe, ecc_dbe, row_remap_failure, throttle, idle
	Reason string // the XID code, the throttle reason (hw_thermal_slowdown, …), or for idle whether a pod holds the device
	// Start is the first sample in the state; End the first sample out of it, or the last in
	// it when Ongoing: the window, or the device's reports, ended first.
	Start, End time.Time
	Ongoing    bool
	Value      float64 // the XID code, the errors counted, the throttle reasons' bitmask, the mean utilisation
	Samples    int     // in the state
	Pod        string  // the workload the samples were attributed to, if any
	Namespace  string
	Container  string
}

// EventQuery selects events overlapping a window, of some devices (all, one host, one
// model, one device by key) and some kinds (all when empty).
type EventQuery struct {
	Range    TimeRange
	Hostname string
	Model    string
	GPU      string
	Kinds    []string
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
