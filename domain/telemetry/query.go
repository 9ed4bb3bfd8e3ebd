package telemetry

import "time"

// TimeRange selects samples by time, inclusive at both ends. A zero Start or End leaves that
// side open.
type TimeRange struct {
	Start time.Time
	End   time.Time
}

// Page selects a slice of an ordered result: Limit items (all of them when 0) after skipping
// Offset, or after the position an earlier page's cursor marks. Cursors are opaque tokens
// made by the store.
type Page struct {
	Limit  int
	Offset int
	Cursor string
}

// SampleQuery asks for one GPU's samples within a time range, ordered by time (newest first
// when Desc), optionally only some metrics.
type SampleQuery struct {
	GPU     string // UUID
	Range   TimeRange
	Metrics []string // empty: every metric
	Desc    bool
	Page    Page
}

// SeriesQuery asks for several devices' samples at once, as series: what a query across a
// fleet reads.
type SeriesQuery struct {
	GPUs    []string // device keys
	Range   TimeRange
	Metrics []string // empty: every metric

	// Transient says that the reader keeps no series' points once it has handled them (it
	// reduces them as they come): the store may reuse their memory for the next.
	Transient bool
}

// Series is one device's samples of one metric under one workload attribution, in time
// order.
type Series struct {
	GPU, Metric               string
	Container, Pod, Namespace string
	Points                    []Point
}

// SummaryQuery asks for several devices' series summarised in buckets of Step, one of the
// store's downsampled tiers': what a question over months reads instead of every sample.
type SummaryQuery struct {
	GPUs    []string // device keys
	Range   TimeRange
	Metrics []string // empty: every metric
	Step    time.Duration
}

// SummarySeries is a series in buckets.
type SummarySeries struct {
	GPU, Metric               string
	Container, Pod, Namespace string
	Summaries                 []Summary // by start
}

// Summary is what a bucket of a series holds of its samples: enough for avg, sum, min, max,
// count and last over whole buckets.
type Summary struct {
	Start               int64 // Unix µs
	Count               int64
	Sum, Min, Max, Last float64
	// LastAt is when Last was sampled (Unix µs).
	LastAt int64
}

// Point is a sample of a series: its time in Unix microseconds, the resolution stores keep,
// and its value.
type Point struct {
	Time  int64
	Value float64
}

// GPUFilter selects GPUs; empty fields select all.
type GPUFilter struct {
	UUID     string
	Hostname string
	Model    string

	// After, when set, selects only the GPUs listed after it; Limit > 0 keeps that many GPUs
	// at most, each with its MIG instances: paging by key, so that no GPU is skipped or
	// repeated while others arrive.
	After *GPUPosition
	Limit int

	// NoSpan leaves each device's FirstSeen and LastSeen zero: a listing without a lookup of
	// the samples, for a reader that finds them anyway.
	NoSpan bool
	// Targets lists scrape targets' devices too (GPU.IsTarget), which hold up and the like
	// and are no GPUs: for PromQL, which answers them.
	Targets bool
}

// GPUPosition is where a GPU stands in listings: they are ordered by hostname, then index,
// then UUID.
type GPUPosition struct {
	Hostname string
	Index    int
	UUID     string
}

// HostFilter pages hosts: those named after After, Limit of them at most when > 0.
type HostFilter struct {
	After string
	Limit int
}

// GPUInfo is a known device with the times of its first and last stored samples. Instances,
// in a listing that groups them, holds a GPU's MIG instances.
type GPUInfo struct {
	GPU
	FirstSeen, LastSeen time.Time
	Instances           []GPUInfo
	// OnlyInstances marks a GPU that reports only through its MIG instances: it has no
	// samples of its own, its description and times are its instances'.
	OnlyInstances bool
}

// Host is a machine and its GPUs.
type Host struct {
	Hostname string
	GPUs     int
	LastSeen time.Time
}

// Aggregation reduces the samples of a time bucket to one value.
type Aggregation string

// The aggregations.
const (
	AggAvg   Aggregation = "avg"
	AggMin   Aggregation = "min"
	AggMax   Aggregation = "max"
	AggLast  Aggregation = "last"
	AggCount Aggregation = "count"
)

// Aggregations lists every aggregation.
var Aggregations = []Aggregation{AggAvg, AggMin, AggMax, AggLast, AggCount}

// AggregateQuery asks for one value per metric per Step-long bucket of one GPU's samples.
// Buckets start at whole multiples of Step since the Unix epoch.
type AggregateQuery struct {
	GPU     string
	Range   TimeRange
	Metrics []string
	Step    time.Duration
	Agg     Aggregation
	// MaxResolution is the coarsest downsampled tier the answer may read: AnyResolution
	// (the coarsest whose step divides Step), RawResolution (the samples only), or a tier's
	// step.
	MaxResolution time.Duration
}

// Limits of AggregateQuery.MaxResolution.
const (
	AnyResolution time.Duration = 0
	RawResolution time.Duration = -1
)

// ParseMaxResolution reads a max_source_resolution parameter as Thanos has it: auto (or
// none) for the coarsest tier that answers exactly, raw or 0s for the samples only, or a
// tier's step.
func ParseMaxResolution(v string) (time.Duration, error) {
	switch v {
	case "", "auto":
		return AnyResolution, nil
	case "raw", "0", "0s":
		return RawResolution, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, Invalid("max_source_resolution", "%q is not auto, raw, 5m or 1h", v)
	}
	return d, nil
}

// Aggregated is the answer to an AggregateQuery.
type Aggregated struct {
	Buckets   []Bucket
	Truncated bool // the window held more values than an answer does
	// Resolution is the step of the tier the answer read, 0 when it read the samples: equal
	// answers either way, but one the samples retention deleted can only come from a tier.
	Resolution time.Duration
	// Warnings say where the answer holds less than the window asked for: buckets before
	// the oldest sample kept, read from the samples.
	Warnings []string
}

// Bucket is one aggregated value.
type Bucket struct {
	Start  time.Time
	Metric string
	Value  float64
	Count  int64 // samples in the bucket
}

// Stats summarises what is stored. Oldest and Newest are zero while nothing is stored.
type Stats struct {
	TotalSamples int64
	UniqueGPUs   int64
	UniqueHosts  int64
	Oldest       time.Time
	Newest       time.Time
}
