package telemetry

import (
	"math"
	"time"
)

// Workload is a workload's hold on one device — a pod's (namespace, pod, container) on a
// GPU or MIG instance — from its first sample to the end of the time its last one stands
// for, accounted as usage reports are (shared GPUs split, MIG instances by their slices).
// A record stays Open while the workload holds the device; it closes once the workload has
// reported nothing on the device for longer than the usage gap. It outlives the samples it was made of: records have their own retention.
type Workload struct {
	ID                        int64
	GPU                       GPU
	Namespace, Pod, Container string
	Start, End                time.Time
	LastSeen                  time.Time // the last utilisation sample attributed to it
	Open                      bool

	GPUHours   float64
	UtilHours  float64 // of GPUHours, the time with a utilisation value (blanks aside)
	MeanUtil   float64 // %, NaN without a value; on a MIG instance, its graphics engine activity × 100
	P95Util    float64 // %, a whole percent, NaN without a value
	IdleHours  float64 // of UtilHours, under usage.IdleBelow
	UtilSignal string  // the field utilisation was read from
	EnergyKWh  float64
	PeakMemory float64 // MiB, NaN when the device sent no memory sample
	// Profiling holds each profiling field reported during the hold (usage.EfficiencyFields):
	// its mean share of the model's peak.
	Profiling map[string]Activity
	Events    int   // health events that began during the hold
	Samples   int64 // utilisation samples
	// UtilHistogram holds the hours of UtilHours at each whole percent of utilisation, 0 to
	// 100: what P95Util is read from, and what the records of later passes add to.
	UtilHistogram [101]float64
}

// IdleFraction is the share of the time with a utilisation value spent idle, NaN without one.
func (w Workload) IdleFraction() float64 {
	if w.UtilHours == 0 {
		return math.NaN()
	}
	return w.IdleHours / w.UtilHours
}

// Activity is a profiling field's mean over the hours a device reported it, as a share of
// the model's peak; Mean is NaN when it never did (the exporter does not send the field, or
// not on this device).
type Activity struct{ Mean, Hours float64 }

// Weighted is a mean over time in the making: seconds, and value × seconds. Sums of it add
// up across adjacent windows, as means do not.
type Weighted struct{ Seconds, Sum float64 }

// Mean is the time-weighted mean, NaN over no time.
func (w Weighted) Mean() float64 {
	if w.Seconds == 0 {
		return math.NaN()
	}
	return w.Sum / w.Seconds
}

// Add is w and o summed.
func (w Weighted) Add(o Weighted) Weighted { return Weighted{w.Seconds + o.Seconds, w.Sum + o.Sum} }

// Activity is the mean over the hours.
func (w Weighted) Activity() Activity { return Activity{Mean: w.Mean(), Hours: w.Seconds / 3600} }

// WorkloadQuery selects workload records: those overlapping Range (any when zero), of a
// namespace, pod, device (key), host or model when given; Open alone when Open is "open",
// closed alone when "closed". They come most recent end first, then by ID descending,
// Limit at most, after the position After when not nil.
type WorkloadQuery struct {
	Range     TimeRange
	Namespace string
	Pod       string
	GPU       string
	Hostname  string
	Model     string
	State     string // "", "open" or "closed"
	Limit     int
	After     *WorkloadPosition
}

// WorkloadPosition is where a page of workload records ended: its last record's end and ID.
type WorkloadPosition struct {
	End time.Time
	ID  int64
}

// The states a WorkloadQuery selects.
const (
	WorkloadOpen   = "open"
	WorkloadClosed = "closed"
)

// RecorderState is where the workload recorder is: records and hourly usage are made up
// to Through (zero before the first pass); until Replay, passes redo the hourly usage only
// (samples arrived after their hours were recorded); Now is the store's clock as the state
// was read.
type RecorderState struct {
	Through, Replay, Now time.Time
}

// UsagePart is what one device's samples attributed to one workload (or to none) add up to
// over a span of time — an hour as the recorder keeps them, or many hours summed: the sums
// a usage report is made of, which add up across adjacent spans. Seconds are GPU-seconds
// (shares applied); PeakMemory is NaN without a memory sample.
type UsagePart struct {
	GPU          GPU // UUID, Instance, Hostname, ModelName
	Namespace    string
	Pod          string
	Start        time.Time // the hour's; zero for a sum of hours
	Signal       string    // the field the device's utilisation was read from
	Seconds      float64
	UtilSeconds  float64
	UtilWeighted float64
	Joules       float64
	PeakMemory   float64
	Samples      int64
	// Profiling holds each profiling field reported: its share of the model's peak, over
	// GPU-seconds.
	Profiling map[string]Weighted
	// HeldSeconds is the part of Seconds attributed to a workload (a namespace or a pod): the
	// rest, no workload held the device.
	HeldSeconds float64
}

// UsagePartQuery asks for the usage parts of whole hours in Range, of a host, a model and a
// namespace when given, summed per device and what Per keeps of the workload.
type UsagePartQuery struct {
	Range     TimeRange
	Hostname  string
	Model     string
	Namespace string
	Per       Grouping // GroupPod (namespace and pod), GroupNamespace, or anything else: the device alone
}
