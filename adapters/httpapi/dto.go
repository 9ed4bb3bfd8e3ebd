package httpapi

import (
	"math"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// GPU is a GPU as the API shows it. first_seen and last_seen are the times of its oldest and
// newest stored samples. labels holds every other label of its series (instance, job, …).
// A MIG-partitioned GPU lists its instances in mig_instances, each a device of its own
// (gpu_instance is dcgm-exporter's GPU_I_ID): ask for an instance's telemetry with
// ?gpu_instance=ID.
type GPU struct {
	UUID string `json:"uuid" example:"GPU-5fd4f087-86f3-7a43-b711-4771313afc50"`
	// IdentifiedBy names the label the device's identity came from when its series carry no
	// UUID label: uuid (dcgm-exporter 1.x), or pci_bus_id or gpu with the host (uuid is then
	// made from them, e.g. pci:node-1:00000000:3B:00.0).
	IdentifiedBy       string            `json:"identified_by,omitempty" example:"pci_bus_id"`
	GPUInstance        string            `json:"gpu_instance,omitempty" example:"3"`
	GPUInstanceProfile string            `json:"gpu_instance_profile,omitempty" example:"1g.10gb"`
	Hostname           string            `json:"hostname" example:"mtv5-dgx1-hgpu-031"`
	GPUIndex           int               `json:"gpu_index" example:"0"`
	Device             string            `json:"device" example:"nvidia0"`
	ModelName          string            `json:"model_name" example:"NVIDIA H100 80GB HBM3"`
	DriverVersion      string            `json:"driver_version" example:"535.129.03"`
	PCIBusID           string            `json:"pci_bus_id,omitempty" example:"00000000:07:00.0"`
	Labels             map[string]string `json:"labels,omitempty"`
	FirstSeen          *time.Time        `json:"first_seen,omitempty" example:"2025-07-18T20:42:34Z"`
	LastSeen           *time.Time        `json:"last_seen,omitempty" example:"2025-07-18T20:42:37Z"`
	MIGInstances       []GPU             `json:"mig_instances,omitempty"`
	// OnlyInstances is true for a GPU that reports only through its MIG instances: it has
	// no samples of its own.
	OnlyInstances bool `json:"only_instances,omitempty" example:"false"`
}

func toGPU(g telemetry.GPUInfo) GPU {
	out := GPU{UUID: g.UUID, IdentifiedBy: g.IDFrom, GPUInstance: g.Instance, GPUInstanceProfile: g.InstanceProfile, Hostname: g.Hostname,
		GPUIndex: g.Index, Device: g.Device, ModelName: g.ModelName, DriverVersion: g.DriverVersion,
		PCIBusID: g.PCIBusID, Labels: g.Labels, FirstSeen: optTime(g.FirstSeen), LastSeen: optTime(g.LastSeen),
		OnlyInstances: g.OnlyInstances}
	for _, inst := range g.Instances {
		out.MIGInstances = append(out.MIGInstances, toGPU(inst))
	}
	return out
}

// optTime leaves out unknown times rather than showing year 1.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// GPUList is the answer to GET /api/v1/gpus: one page of GPUs, by hostname, index and
// UUID. next_cursor is present while more GPUs follow: pass it as cursor.
type GPUList struct {
	Data       []GPU  `json:"data"`
	Count      int    `json:"count" example:"247"`
	Limit      int    `json:"limit" example:"1000"`
	NextCursor string `json:"next_cursor,omitempty" example:"ZzE6WyJub2RlLTAxIiwzLCJHUFUtMDEiXQ"`
}

// Sample is one telemetry reading.
type Sample struct {
	Timestamp time.Time `json:"timestamp" example:"2025-07-18T20:42:34Z"`
	Metric    string    `json:"metric" example:"DCGM_FI_DEV_GPU_UTIL"`
	Value     float64   `json:"value" example:"87"`
	Container string    `json:"container,omitempty"`
	Pod       string    `json:"pod,omitempty"`
	Namespace string    `json:"namespace,omitempty"`
	// GPUInstance is the MIG instance (GPU_I_ID) the sample is of, where a GPU's answer holds
	// its instances' samples.
	GPUInstance string `json:"gpu_instance,omitempty" example:""`
}

func toSample(s telemetry.Sample) Sample {
	_, instance := telemetry.SplitDeviceKey(s.GPU)
	return Sample{Timestamp: s.Time, Metric: s.Metric, Value: s.Value,
		Container: s.Container, Pod: s.Pod, Namespace: s.Namespace, GPUInstance: instance}
}

// TelemetryPage is the answer to GET /api/v1/gpus/{uuid}/telemetry: one page of samples,
// ordered by time. next_cursor is present while more samples follow: pass it as cursor.
type TelemetryPage struct {
	UUID       string   `json:"uuid" example:"GPU-5fd4f087-86f3-7a43-b711-4771313afc50"`
	Data       []Sample `json:"data"`
	Count      int      `json:"count" example:"100"`
	Limit      int      `json:"limit" example:"100"`
	Offset     int      `json:"offset" example:"0"`
	NextCursor string   `json:"next_cursor,omitempty" example:"djE6MTc1Mjg3MTM1NDAwMDAwMDo0"`
}

// Bucket is one aggregated value: agg of the metric's samples from bucket_start for one step.
type Bucket struct {
	BucketStart time.Time `json:"bucket_start" example:"2025-07-18T20:42:00Z"`
	Metric      string    `json:"metric" example:"DCGM_FI_DEV_GPU_UTIL"`
	Value       float64   `json:"value" example:"87.5"`
	Count       int64     `json:"count" example:"60"`
}

func toBucket(b telemetry.Bucket) Bucket {
	return Bucket{BucketStart: b.Start, Metric: b.Metric, Value: b.Value, Count: b.Count}
}

// AggregatePage is the answer to GET /api/v1/gpus/{uuid}/telemetry/aggregate?step=…&agg=….
type AggregatePage struct {
	UUID  string   `json:"uuid" example:"GPU-5fd4f087-86f3-7a43-b711-4771313afc50"`
	Step  string   `json:"step" example:"1m0s"`
	Agg   string   `json:"agg" example:"avg"`
	Data  []Bucket `json:"data"`
	Count int      `json:"count" example:"60"`
	// Truncated is set when the answer stopped at its maximum of values before the window's
	// end: ask again from the last bucket, or bound the window.
	Truncated bool `json:"truncated" example:"false"`
	// Resolution is what the answer was computed from: raw (the samples), or the step of a
	// downsampled tier (5m, 1h).
	Resolution string `json:"resolution" example:"raw"`
	// Warnings say where the answer holds less than the window asked for (buckets before the
	// oldest sample kept, read from the samples); absent when none.
	Warnings []string `json:"warnings,omitempty"`
}

// LatestList is the answer to GET /api/v1/gpus/{uuid}/latest.
type LatestList struct {
	UUID  string   `json:"uuid" example:"GPU-5fd4f087-86f3-7a43-b711-4771313afc50"`
	Data  []Sample `json:"data"`
	Count int      `json:"count" example:"10"`
}

// Host is a machine with GPUs.
type Host struct {
	Hostname string     `json:"hostname" example:"mtv5-dgx1-hgpu-031"`
	GPUCount int        `json:"gpu_count" example:"8"`
	LastSeen *time.Time `json:"last_seen,omitempty" example:"2025-07-18T20:42:37Z"`
}

// HostList is the answer to GET /api/v1/hosts: one page of hosts, by name. next_cursor is
// present while more hosts follow: pass it as cursor.
type HostList struct {
	Data       []Host `json:"data"`
	Count      int    `json:"count" example:"31"`
	Limit      int    `json:"limit" example:"1000"`
	NextCursor string `json:"next_cursor,omitempty" example:"aDE6Im5vZGUtMDEi"`
}

// Metric is a metric present in the store.
type Metric struct {
	Name        string `json:"name" example:"DCGM_FI_DEV_POWER_USAGE"`
	Unit        string `json:"unit,omitempty" example:"W"`
	Description string `json:"description,omitempty" example:"Power draw"`
}

// MetricList is the answer to GET /api/v1/metrics.
type MetricList struct {
	Data  []Metric `json:"data"`
	Count int      `json:"count" example:"10"`
}

// Stats is the answer to GET /api/v1/stats.
type Stats struct {
	TotalRecords int64      `json:"total_records" example:"2470"`
	UniqueGPUs   int64      `json:"unique_gpus" example:"247"`
	UniqueHosts  int64      `json:"unique_hosts" example:"31"`
	OldestSample *time.Time `json:"oldest_sample,omitempty" example:"2025-07-18T20:42:34Z"`
	NewestSample *time.Time `json:"newest_sample,omitempty" example:"2025-07-18T20:42:37Z"`
}

// Status is the answer of the probes.
type Status struct {
	Status string `json:"status" example:"ok"`
	Reason string `json:"reason,omitempty"`
}

// ErrorBody is every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong: code is one of invalid_argument, unauthenticated,
// forbidden, not_found, method_not_allowed, unsupported, unavailable, internal.
type ErrorDetail struct {
	Code    string `json:"code" example:"invalid_argument"`
	Message string `json:"message" example:"start_time: \"yesterday\" is not an RFC 3339 time"`
}

// Target is a scrape target of this streamer, as Prometheus' targets page shows one: health
// is up, down or unknown (not scraped yet).
type Target struct {
	ScrapeURL          string            `json:"scrape_url" example:"http://10.0.0.7:9400/metrics"`
	Labels             map[string]string `json:"labels"`
	Health             string            `json:"health" example:"up"`
	LastScrape         *time.Time        `json:"last_scrape,omitempty" example:"2025-07-18T20:42:34Z"`
	LastScrapeDuration float64           `json:"last_scrape_duration_seconds" example:"0.012"`
	LastError          string            `json:"last_error" example:""`
	SamplesPerScrape   int               `json:"samples_per_scrape" example:"80"`
	DroppedPerScrape   int               `json:"dropped_per_scrape" example:"0"`
	RejectedPerScrape  int               `json:"rejected_per_scrape" example:"0"`
	// DroppedBy splits dropped_per_scrape by reason: line (a line that does not parse),
	// no_device (a series naming no GPU), or the field at fault (value, …).
	DroppedBy    map[string]int   `json:"dropped_by,omitempty"`
	DroppedTotal map[string]int64 `json:"dropped_total,omitempty"`
	// FirstBadLine is the last scrape's first line that did not parse.
	FirstBadLine *BadLine `json:"first_bad_line,omitempty"`
	// Warning says why a target that answers delivers nothing.
	Warning         string `json:"warning,omitempty" example:""`
	ScrapeInterval  string `json:"scrape_interval" example:"15s"`
	Scrapes         int64  `json:"scrapes" example:"240"`
	MissedIntervals int64  `json:"missed_intervals" example:"0"`
}

// BadLine is a line of a scraped exposition that did not parse.
type BadLine struct {
	Number int    `json:"number" example:"57"`
	Text   string `json:"text" example:"DCGM_FI_DEV_VGPU_LICENSE_STATUS{gpu=\"0\"} ERROR - FAILED TO CONVERT TO STRING"`
	Reason string `json:"reason" example:"expected float as value, got \"ERROR\""`
}

func toTarget(t telemetry.Target) Target {
	out := Target{ScrapeURL: t.URL, Labels: t.Labels, Health: t.Health, LastScrape: optTime(t.LastScrape),
		LastScrapeDuration: t.LastDuration.Seconds(), LastError: t.LastError, SamplesPerScrape: t.LastSamples,
		DroppedPerScrape: t.LastDropped, RejectedPerScrape: t.LastRejected, DroppedBy: t.LastDroppedBy, DroppedTotal: t.DroppedTotal,
		Warning: t.Warning, ScrapeInterval: t.ScrapeInterval.String(), Scrapes: t.Scrapes, MissedIntervals: t.Missed}
	if b := t.FirstBadLine; b != nil {
		out.FirstBadLine = &BadLine{Number: b.Number, Text: b.Text, Reason: b.Reason}
	}
	return out
}

// TargetList is the answer to GET /api/v1/targets.
type TargetList struct {
	Data  []Target `json:"data"`
	Count int      `json:"count" example:"31"`
	Up    int      `json:"up" example:"31"`
}

// FleetGroup summarises one group's samples: count, avg, min and max exact, p50, p95 and
// p99 within 1 % of the exact value.
type FleetGroup struct {
	Group   string  `json:"group" example:"mtv5-dgx1-hgpu-031"`
	Devices int     `json:"devices" example:"8"`
	Samples int64   `json:"samples" example:"960"`
	Avg     float64 `json:"avg" example:"61.5"`
	Min     float64 `json:"min" example:"0"`
	Max     float64 `json:"max" example:"100"`
	P50     float64 `json:"p50" example:"72"`
	P95     float64 `json:"p95" example:"99"`
	P99     float64 `json:"p99" example:"100"`
}

// FleetAggregate is the answer to GET /api/v1/fleet/aggregate.
type FleetAggregate struct {
	Metric    string       `json:"metric" example:"DCGM_FI_DEV_GPU_UTIL"`
	By        string       `json:"by" example:"host"`
	StartTime time.Time    `json:"start_time" example:"2025-07-18T20:42:34Z"`
	EndTime   time.Time    `json:"end_time" example:"2025-07-18T21:42:34Z"`
	Data      []FleetGroup `json:"data"`
	Count     int          `json:"count" example:"31"`
	// Resolution is what the answer was computed from: raw (the samples), or the step of
	// the downsampled tier it read (p50, p95 and p99 are then of the tier's bucket means).
	Resolution string `json:"resolution" example:"raw"`
}

// DeviceValue is one device's value of a metric. value and timestamp are absent for a
// device with no sample in the window.
type DeviceValue struct {
	UUID        string     `json:"uuid" example:"GPU-5fd4f087-86f3-7a43-b711-4771313afc50"`
	GPUInstance string     `json:"gpu_instance,omitempty" example:"3"`
	Hostname    string     `json:"hostname" example:"mtv5-dgx1-hgpu-031"`
	GPUIndex    int        `json:"gpu_index" example:"0"`
	ModelName   string     `json:"model_name" example:"NVIDIA H100 80GB HBM3"`
	Value       *float64   `json:"value,omitempty" example:"97"`
	Timestamp   *time.Time `json:"timestamp,omitempty" example:"2025-07-18T21:42:30Z"`
	Samples     int64      `json:"samples" example:"120"`
}

func toDeviceValue(d telemetry.DeviceValue) DeviceValue {
	out := DeviceValue{UUID: d.UUID, GPUInstance: d.Instance, Hostname: d.Hostname, GPUIndex: d.Index,
		ModelName: d.ModelName, Samples: d.Samples}
	if d.Samples > 0 {
		v := d.Value
		out.Value, out.Timestamp = &v, optTime(d.Time)
	}
	return out
}

// DeviceValues is the answer to GET /api/v1/fleet/top and /api/v1/fleet/latest.
type DeviceValues struct {
	Metric    string        `json:"metric" example:"DCGM_FI_DEV_GPU_TEMP"`
	StartTime time.Time     `json:"start_time" example:"2025-07-18T20:42:34Z"`
	EndTime   time.Time     `json:"end_time" example:"2025-07-18T21:42:34Z"`
	Data      []DeviceValue `json:"data"`
	Count     int           `json:"count" example:"10"`
	// NextCursor asks for the next page of /fleet/latest; absent on the last.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Event is a span in which a device was in a state worth knowing of: kind xid (reason: the
// XID code), ecc_sbe or ecc_dbe (reason: volatile or aggregate, the counter; value: errors
// counted), row_remap_failure, row_remap_pending, throttle (reason: hw_thermal_slowdown,
// sw_power_cap, …; value: the reasons' bitmask), pcie_replay, nvlink_errors (reason:
// crc_flit, crc_data, replay, recovery) or idle (reason: allocated when a pod held the
// device, else unallocated; value: mean utilisation). end is the first sample out of the
// state; while ongoing, the last in it. class (app, driver, hardware) says what failed and
// action (none, restart_app, reset_gpu, reboot_node, isolate) what to do, as the XID catalog
// and the device's row remap state say; resolution how it ended, when its samples say.
type Event struct {
	UUID        string    `json:"uuid" example:"GPU-5fd4f087-86f3-7a43-b711-4771313afc50"`
	GPUInstance string    `json:"gpu_instance,omitempty" example:"3"`
	Hostname    string    `json:"hostname" example:"mtv5-dgx1-hgpu-031"`
	GPUIndex    int       `json:"gpu_index" example:"0"`
	ModelName   string    `json:"model_name" example:"NVIDIA H100 80GB HBM3"`
	Kind        string    `json:"kind" example:"xid"`
	Field       string    `json:"field,omitempty" example:"DCGM_FI_DEV_XID_ERRORS"`
	Reason      string    `json:"reason,omitempty" example:"79"`
	Class       string    `json:"class,omitempty" example:"hardware" enums:"app,driver,hardware"`
	Action      string    `json:"action,omitempty" example:"reboot_node" enums:"none,restart_app,reset_gpu,reboot_node,isolate"`
	Detail      string    `json:"detail,omitempty" example:"GPU has fallen off the bus"`
	Start       time.Time `json:"start" example:"2025-07-18T20:42:34Z"`
	End         time.Time `json:"end" example:"2025-07-18T20:47:34Z"`
	LastSeen    time.Time `json:"last_seen" example:"2025-07-18T20:47:04Z"`
	Ongoing     bool      `json:"ongoing"`
	Resolution  string    `json:"resolution,omitempty" example:"cleared" enums:"cleared,replaced,cancelled,applied,reset"`
	Count       int       `json:"count" example:"1"`
	Value       float64   `json:"value" example:"79"`
	Samples     int       `json:"samples" example:"30"`
	Pod         string    `json:"pod,omitempty" example:"train-0"`
	Namespace   string    `json:"namespace,omitempty" example:"team-a"`
	Container   string    `json:"container,omitempty" example:"main"`
}

// EventList is the answer to GET /api/v1/events and /api/v1/fleet/idle, by start.
type EventList struct {
	StartTime time.Time `json:"start_time" example:"2025-07-17T20:42:34Z"`
	EndTime   time.Time `json:"end_time" example:"2025-07-18T20:42:34Z"`
	Data      []Event   `json:"data"`
	Count     int       `json:"count" example:"3"`
	Devices   int       `json:"devices" example:"2"`
}

func toEvent(e telemetry.Event) Event {
	return Event{UUID: e.UUID, GPUInstance: e.Instance, Hostname: e.Hostname, GPUIndex: e.Index, ModelName: e.ModelName,
		Kind: e.Kind, Field: e.Field, Reason: e.Reason, Class: e.Class, Action: e.Action, Detail: e.Detail, Start: e.Start, End: e.End,
		LastSeen: e.LastSeen, Ongoing: e.Ongoing, Resolution: e.Resolution, Count: e.Count, Value: e.Value, Samples: e.Samples,
		Pod: e.Pod, Namespace: e.Namespace, Container: e.Container}
}

// Usage is what one group used over the window. mean_utilization and peak_memory_mib are
// absent when the group has no such samples.
type Usage struct {
	Group           string   `json:"group" example:"team-a"`
	Devices         int      `json:"devices" example:"8"`
	GPUHours        float64  `json:"gpu_hours" example:"192"`
	MeanUtilization *float64 `json:"mean_utilization,omitempty" example:"63.2"`
	EnergyKWh       float64  `json:"energy_kwh" example:"96.4"`
	PeakMemoryMiB   *float64 `json:"peak_memory_mib,omitempty" example:"79647"`
	Samples         int64    `json:"samples" example:"23040"`
	// UtilSignals says where the utilisation of the group's devices came from: field →
	// devices. MIG instances report no DCGM_FI_DEV_GPU_UTIL; theirs is
	// DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100.
	UtilSignals map[string]int `json:"util_signals,omitempty"`
	// Profiling holds each profiling field reported: its mean share of the model's peak,
	// and the GPU-hours it was reported over (GET /api/v1/fleet/efficiency).
	Profiling map[string]EfficiencyShare `json:"profiling,omitempty"`
	// EfficiencyClass judges how well the group used what it held (GET
	// /api/v1/fleet/efficiency): not_reported where no SM activity nor graphics engine
	// activity was sent, never idle.
	EfficiencyClass string `json:"efficiency_class" example:"active" enums:"active,held_no_kernels,memory_held_compute_idle,not_reported,idle"`
}

// UsageReport is the answer to GET /api/v1/fleet/usage.
type UsageReport struct {
	By        string    `json:"by" example:"namespace"`
	Namespace string    `json:"namespace,omitempty" example:"team-a"`
	StartTime time.Time `json:"start_time" example:"2025-07-17T21:42:34Z"`
	EndTime   time.Time `json:"end_time" example:"2025-07-18T21:42:34Z"`
	Gap       string    `json:"gap" example:"5m0s"`
	Data      []Usage   `json:"data"`
	Count     int       `json:"count" example:"12"`
	// Warnings says where the answer is not what was asked: samples deleted at the
	// window's start, counted from the whole hour.
	Warnings []string `json:"warnings,omitempty"`
}

func toUsage(u telemetry.Usage) Usage {
	out := Usage{Group: u.Group, Devices: u.Devices, GPUHours: u.GPUHours, EnergyKWh: u.EnergyKWh, Samples: u.Samples,
		UtilSignals: u.UtilSignals, Profiling: toShares(u.Profiling), EfficiencyClass: u.Class}
	if !math.IsNaN(u.MeanUtil) {
		out.MeanUtilization = &u.MeanUtil
	}
	if !math.IsNaN(u.PeakMemory) {
		out.PeakMemoryMiB = &u.PeakMemory
	}
	return out
}
