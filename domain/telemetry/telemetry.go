// Package telemetry is the domain model of the pipeline: GPUs, the samples they report, the
// batches samples travel in, and the questions asked of stored telemetry. It depends on the
// standard library only.
package telemetry

import (
	"fmt"
	"maps"
	"math"
	"sort"
	"strings"
	"time"
)

// GPU is one device: a physical GPU, identified by its UUID, or one MIG instance of it,
// identified by the GPU's UUID and its GPU instance ID (dcgm-exporter's GPU_I_ID), which
// samples never share with the GPU or its other instances. Index is the per-host index DCGM
// reports as gpu ("0" repeats on every host), -1 when unknown. Labels holds every other
// label of the device's series (instance, job, …) as the source named them.
//
// UUID is the device's identity: its UUID, or for a stream whose series carry none, one made
// from its host and PCI bus ID or gpu index, which IDFrom names (IDFromPCIBusID, …).
// HostnameLabel is the name the exporter gave Hostname's label when not "Hostname".
type GPU struct {
	UUID            string
	IDFrom          string
	HostnameLabel   string
	Instance        string // GPU_I_ID; "" for a whole GPU
	InstanceProfile string // GPU_I_PROFILE, e.g. "1g.10gb"
	Hostname        string
	Index           int
	Device          string
	ModelName       string
	DriverVersion   string
	PCIBusID        string
	Labels          map[string]string
}

// Key is the device's identity, which samples carry: DeviceKey(UUID, Instance).
func (g GPU) Key() string { return DeviceKey(g.UUID, g.Instance) }

// Equal reports whether two GPUs describe the same device alike.
func (g GPU) Equal(o GPU) bool {
	return g.UUID == o.UUID && g.IDFrom == o.IDFrom && g.HostnameLabel == o.HostnameLabel && g.Instance == o.Instance && g.InstanceProfile == o.InstanceProfile &&
		g.Hostname == o.Hostname && g.Index == o.Index && g.Device == o.Device &&
		g.ModelName == o.ModelName && g.DriverVersion == o.DriverVersion && g.PCIBusID == o.PCIBusID &&
		maps.Equal(g.Labels, o.Labels)
}

// DeviceKey names a device in one string: the GPU's UUID, or UUID/GPU_I_ID for a MIG
// instance. UUIDs never hold a slash.
func DeviceKey(uuid, instance string) string {
	if instance == "" {
		return uuid
	}
	return uuid + "/" + instance
}

// SplitDeviceKey is DeviceKey reversed.
func SplitDeviceKey(key string) (uuid, instance string) {
	uuid, instance, _ = strings.Cut(key, "/")
	return uuid, instance
}

// Sample is one reading of one metric of one device at one instant. Metric is any DCGM field
// name (DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_POWER_USAGE, …); the pipeline does not restrict the
// set. Container, Pod and Namespace name the workload using the device and are often empty.
type Sample struct {
	GPU       string // the device's Key
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
// GPUs holds every device the samples refer to, once each (by Key).
type Batch struct {
	ID      string
	GPUs    []GPU
	Samples []Sample
}

// Validate reports whether the sample can be stored: it names a GPU and a metric, carries a
// time, its value is a finite number, and its text is within CheckText's rules.
func (s Sample) Validate() error { return s.ValidateAfter(nil) }

// ValidateAfter is Validate for a sample that follows valid, one found valid (or nil): the
// text the two share is not checked again, since samples come in runs of one device.
func (s Sample) ValidateAfter(valid *Sample) error {
	switch {
	case s.GPU == "":
		return &ValidationError{Field: "uuid", Reason: "is empty"}
	case s.Metric == "":
		return &ValidationError{Field: "metric_name", Reason: "is empty"}
	case CheckTime(s.Time) != nil:
		return CheckTime(s.Time)
	case math.IsNaN(s.Value) || math.IsInf(s.Value, 0):
		return &ValidationError{Field: "value", Reason: "is not a finite number"}
	}
	return s.checkTextAfter(valid)
}

// Written is what a store did with one batch: Stored reports whether its ID was new;
// AlreadyStored counts its samples left out because their device, metric and time were
// stored before (by another batch, or earlier in the same write): the first stored wins.
type Written struct {
	Stored        bool
	AlreadyStored int
}

// ScanStats counts what one pass over a source saw. Rows counts data rows read (the header
// excluded); Rejected rows were malformed and skipped; Blank values were DCGM's "no data"
// sentinels, skipped too but counted apart because they are not errors; NoDevice rows were
// series that name no GPU (up, node_exporter's), dropped as not the pipeline's.
// RejectedBy splits Rejected by reason: the field at fault (uuid, timestamp, value, …) or
// what was wrong with the record (fields, quote, line_length).
type ScanStats struct {
	Rows       int64
	Rejected   int64
	RejectedBy map[string]int64
	Blank      int64
	NoDevice   int64
}

// Reject counts a rejected record of the reason.
func (s *ScanStats) Reject(reason string) {
	s.Rejected++
	if s.RejectedBy == nil {
		s.RejectedBy = map[string]int64{}
	}
	s.RejectedBy[reason]++
}

// Add returns the sum of two counts.
func (s ScanStats) Add(o ScanStats) ScanStats {
	sum := ScanStats{Rows: s.Rows + o.Rows, Rejected: s.Rejected + o.Rejected, Blank: s.Blank + o.Blank,
		NoDevice: s.NoDevice + o.NoDevice}
	for _, by := range []map[string]int64{s.RejectedBy, o.RejectedBy} {
		for reason, n := range by {
			if sum.RejectedBy == nil {
				sum.RejectedBy = map[string]int64{}
			}
			sum.RejectedBy[reason] += n
		}
	}
	return sum
}

// Reasons is RejectedBy as text, the most frequent first: "uuid=3 timestamp=1"; "" when
// nothing was rejected.
func (s ScanStats) Reasons() string {
	reasons := make([]string, 0, len(s.RejectedBy))
	for r := range s.RejectedBy {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		a, b := reasons[i], reasons[j]
		return s.RejectedBy[a] > s.RejectedBy[b] || (s.RejectedBy[a] == s.RejectedBy[b] && a < b)
	})
	var b strings.Builder
	for i, r := range reasons {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", r, s.RejectedBy[r])
	}
	return b.String()
}

// Target is a scrape target as a live source reports it, in the manner of Prometheus'
// targets page. Health is "up" after a successful scrape, "down" after a failed one and
// "unknown" before the first.
type Target struct {
	URL          string
	Labels       map[string]string // the labels the target adds to its series: instance, job, …
	Health       string
	LastScrape   time.Time
	LastDuration time.Duration
	LastError    string
	LastSamples  int // samples the last scrape delivered
	LastDropped  int // samples of the last scrape dropped: series without a GPU, values not numbers, text that cannot be kept
	LastRejected int // of LastDropped, those with a value or text that cannot be kept
	// LastDroppedBy splits LastDropped by reason: line (an exposition line that does not
	// parse), no_device (a series that names no GPU), or the field at fault.
	LastDroppedBy map[string]int
	// DroppedTotal counts the samples and lines dropped since the target was found, by reason.
	DroppedTotal map[string]int64
	// FirstBadLine is the last scrape's first line that did not parse, if any.
	FirstBadLine *BadLine
	// Warning says why a target that answers delivers nothing: every sample of its last
	// scrape was dropped. "" otherwise.
	Warning        string
	ScrapeInterval time.Duration
	Scrapes        int64 // scrapes so far, failed ones included
	Missed         int64 // intervals skipped because a scrape and its delivery overran the interval
}

// BadLine is a line of a source's input that could not be read: its number (from 1), its
// text (cut when long) and what was wrong with it.
type BadLine struct {
	Number int
	Text   string
	Reason string
}
