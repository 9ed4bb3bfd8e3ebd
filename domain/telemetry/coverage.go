package telemetry

import "time"

// FieldsQuery asks which fields the devices of a host, a model or the fleet report over a
// window.
type FieldsQuery struct {
	Range    TimeRange
	Hostname string
	Model    string
}

// What a field's samples say of a device, when they say it does not really report it.
const (
	FieldNotReported     = "not_reported"      // its peers report it, it does not
	FieldAlwaysZero      = "always_zero"       // a reading never 0 on a working GPU (power, temperature, clocks) reads 0 throughout
	FieldZeroWhileBusy   = "zero_while_busy"   // a profiling field reads 0 throughout while the GPU is busy
	FieldZeroUnlikePeers = "zero_unlike_peers" // link traffic reads 0 throughout while most of its peers' does not
)

// FieldCoverage is what each device and each kind of device reports over a window.
type FieldCoverage struct {
	Kinds   []KindFields   // by model, then MIG profile
	Devices []DeviceFields // by host, index, instance
}

// KindFields is what the devices of one kind — a model's whole GPUs, or its MIG instances of
// one profile — report: each field some report, with how many do and how many read
// something other than 0.
type KindFields struct {
	Model, Profile string
	Devices        int
	Fields         []FieldCount // by name
}

// FieldCount is how many devices of a kind report a field, and read it other than 0.
type FieldCount struct {
	Field            string
	Devices, NonZero int
}

// DeviceFields is what one device reports: each field, when it was first and last sampled in
// the window and how often, and the fields it does not really report (Gaps).
type DeviceFields struct {
	GPU    GPU
	Fields []FieldSeen // by name
	Gaps   []FieldGap  // by name
}

// FieldSeen is a field a device reports.
type FieldSeen struct {
	Field       string
	First, Last time.Time
	Samples     int64
	AllZero     bool
}

// FieldGap is a field a device does not really report (Status: one of FieldNotReported, …),
// with how many of its kind's other devices report it (read it other than 0, for the zero
// statuses).
type FieldGap struct {
	Field  string
	Status string
	Peers  int
}
