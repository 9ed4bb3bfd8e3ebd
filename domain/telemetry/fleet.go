package telemetry

import "time"

// FleetQuery asks for one metric of many devices over a window: every device, or those of
// one host or model.
type FleetQuery struct {
	Metric   string
	Range    TimeRange
	Hostname string
	Model    string
	// MaxResolution is the coarsest downsampled tier a view over a day or more may read, as
	// AggregateQuery's.
	MaxResolution time.Duration
}

// Devices is the filter of the devices q selects.
func (q FleetQuery) Devices() GPUFilter { return GPUFilter{Hostname: q.Hostname, Model: q.Model} }

// Grouping is what a fleet aggregate groups samples by: a device's host, model or itself,
// the workload a sample is attributed to (namespace, pod), or one of a device's other
// labels ("label:instance"). None puts the whole fleet in one group.
type Grouping string

// The groupings; a label grouping is LabelGrouping's prefix and the label's name.
const (
	GroupNone      Grouping = ""
	GroupHost      Grouping = "host"
	GroupModel     Grouping = "model"
	GroupGPU       Grouping = "gpu"
	GroupNamespace Grouping = "namespace"
	GroupPod       Grouping = "pod"
	LabelGrouping           = "label:"
)

// FleetGroup summarises one group's samples of a metric. Count, Avg, Min and Max are exact;
// the percentiles come from a quantile sketch and are within 1 % of the exact value.
type FleetGroup struct {
	Group         string // the group's host, model, device key, namespace, pod or label value
	Devices       int    // devices with samples in the group
	Samples       int64
	Avg, Min, Max float64
	P50, P95, P99 float64
}

// FleetAggregate is a fleet aggregate's groups, by name, and what it read: 0 for the
// samples, or a tier's step.
type FleetAggregate struct {
	Groups     []FleetGroup
	Resolution time.Duration
}

// DeviceValue is one device's value of a metric: an aggregate over a window, or its latest
// sample (Time then says when). Samples is 0 when the device has none in the window, and
// Value is then meaningless.
type DeviceValue struct {
	GPU
	Value   float64
	Time    time.Time
	Samples int64
}

// UsageQuery asks what each group (of devices or of the workloads they ran) used over a
// window, of every device or those of one host or model, counting only one namespace's
// samples when Namespace is set. A sample stands for Gap at most.
type UsageQuery struct {
	Range     TimeRange
	By        Grouping
	Hostname  string
	Model     string
	Namespace string
	Gap       time.Duration
}

// UsageReport is what each group used over a window, by group name, and what the answer
// could not see as asked.
type UsageReport struct {
	Groups   []Usage
	Warnings []string
}

// Usage is what one group used over a window (see domain/usage for how a shared GPU
// counts): GPU time (hours of utilisation samples),
// mean utilisation weighted by that time (in %), energy (the integral of power draw, in
// kWh) and the peak of framebuffer memory used (MiB). MeanUtil and PeakMemory are NaN when
// the group has no such samples.
type Usage struct {
	Group      string
	Devices    int
	GPUHours   float64
	MeanUtil   float64
	EnergyKWh  float64
	PeakMemory float64
	Samples    int64 // utilisation samples
	// UtilSignals says which field gave the utilisation of the group's devices: field →
	// devices (DCGM_FI_DEV_GPU_UTIL, or DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100 for MIG instances).
	UtilSignals map[string]int
	// Profiling holds each profiling field reported (usage.EfficiencyFields): its mean share
	// of the model's peak over the GPU-hours it was reported; Class judges how well the group
	// used what it held by them (usage.Classify).
	Profiling map[string]Activity
	Class     string
}
