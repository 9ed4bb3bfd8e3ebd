// Package telemetry is the domain model of the pipeline: GPUs, the samples they report, the
// batches samples travel in, and the questions asked of stored telemetry. It depends on the
// standard library only.
package telemetry

import (
	"math"
	"time"
)

// GPU is one physical device, identified by its UUID. Index is the per-host index DCGM reports
// as gpu_id ("0" repeats on every host), -1 when unknown.
type GPU struct {
	UUID          string
	Hostname      string
	Index         int
	Device        string
	ModelName     string
	DriverVersion string
}

// Sample is one reading of one metric of one GPU at one instant. Metric is any DCGM field name
// (DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_POWER_USAGE, …); the pipeline does not restrict the set.
// Container, Pod and Namespace name the workload using the GPU and are often empty.
type Sample struct {
	GPU       string // the GPU's UUID
	Metric    string
	Time      time.Time
	Value     float64
	Container string
	Pod       string
	Namespace string
}

// Reading is what a source yields: a sample together with the GPU that reported it.
type Reading struct {
	GPU    GPU
	Sample Sample
}

// Batch is the unit that travels through the queue and is stored atomically. ID is unique per
// batch and set by the streamer (derived from the content); storing a batch whose ID was
// stored before has no effect.
// GPUs holds every GPU the samples refer to, once each.
type Batch struct {
	ID      string
	GPUs    []GPU
	Samples []Sample
}

// Validate reports whether the sample can be stored: it names a GPU and a metric, carries a
// time, and its value is a finite number.
func (s Sample) Validate() error {
	switch {
	case s.GPU == "":
		return &ValidationError{Field: "uuid", Reason: "is empty"}
	case s.Metric == "":
		return &ValidationError{Field: "metric_name", Reason: "is empty"}
	case s.Time.IsZero():
		return &ValidationError{Field: "timestamp", Reason: "is missing"}
	case math.IsNaN(s.Value) || math.IsInf(s.Value, 0):
		return &ValidationError{Field: "value", Reason: "is not a finite number"}
	}
	return nil
}

// ScanStats counts what one pass over a source saw. Rows counts data rows read (the header
// excluded); Rejected rows were malformed and skipped; Blank values were DCGM's "no data"
// sentinels, skipped too but counted apart because they are not errors.
type ScanStats struct {
	Rows     int64
	Rejected int64
	Blank    int64
}

// Add returns the sum of two counts.
func (s ScanStats) Add(o ScanStats) ScanStats {
	return ScanStats{Rows: s.Rows + o.Rows, Rejected: s.Rejected + o.Rejected, Blank: s.Blank + o.Blank}
}
