// Package engine is the storage engine behind the SQL store: how samples are laid out in the
// chunks the database holds, and the rules that keep them each once and cheap to read. It
// holds no SQL and does no I/O; adapters/sqlstore moves its chunks in and out of PostgreSQL
// or SQLite.
//
// A chunk is a run of one device's points, sorted by time and metric, in one of two formats:
//
//   - a head chunk (head.go) holds what one write brings of a device: a few to a hundred
//     points, packed row-wise, small enough to be written at the speed of a COPY;
//   - a block (block.go) holds all of a device's points in one window of BlockSpan, laid out
//     by series — the times once, then each series' values — compact enough for the
//     database's own compression to take it the rest of the way.
//
// Compaction (compact.go) turns head chunks into blocks once their window is over, and
// merges the small head chunks of a window still open into unsealed blocks, so that reads
// of recent data stay a few rows and decode only the series they ask for. Readers see
// chunks of both formats alike: Decode returns a chunk's points in order, a Merger merges
// the chunks overlapping a window into one ordered stream, each (time, metric) of a device
// once, and Buckets reduces that stream for aggregations (aggregate.go).
package engine

import (
	"cmp"
	"errors"
	"time"
)

// Point is a sample in the engine's terms.
type Point struct {
	TS     int64 // Unix microseconds, the resolution both databases keep
	Metric int32
	Value  float64
	Work   *Workload // nil when the sample names no workload
}

// Workload names the container, pod and namespace using a device.
type Workload struct{ Container, Pod, Namespace string }

// Before orders points by time, metric id, then workload: the order of chunks, pages and
// cursors. A time-sliced GPU reports the same metric at the same time once per pod: each
// pod's sample is its own, as each is its own series in Prometheus.
func Before(a, b *Point) bool {
	return a.TS < b.TS || (a.TS == b.TS && (a.Metric < b.Metric || (a.Metric == b.Metric && CompareWork(a.Work, b.Work) < 0)))
}

// Compare is Before as a comparison, for slices.SortFunc.
func Compare(a, b Point) int {
	return cmp.Or(cmp.Compare(a.TS, b.TS), cmp.Compare(a.Metric, b.Metric), CompareWork(a.Work, b.Work))
}

// Same reports whether two points are one sample: the same time, metric and workload.
func Same(a, b *Point) bool { return a.TS == b.TS && a.Metric == b.Metric && sameWork(a.Work, b.Work) }

// CompareWork orders workloads: none first, then by container, pod and namespace.
func CompareWork(a, b *Workload) int {
	switch {
	case a == b:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return cmp.Or(cmp.Compare(a.Container, b.Container), cmp.Compare(a.Pod, b.Pod), cmp.Compare(a.Namespace, b.Namespace))
}

// Chunk is a chunk with the bounds the database indexes it by.
type Chunk struct {
	Device       int32
	MinTS, MaxTS int64 // its first and last points' times
	Samples      int
	Data         []byte
	// Sealed marks a block: the compactor merges it again only when points arrive for its
	// window after it was written.
	Sealed bool
}

const (
	// HeadMaxSamples keeps a head chunk below PostgreSQL's 2 kB TOAST threshold, so rows are
	// neither compressed nor moved out of line on write.
	HeadMaxSamples = 128
	// HeadSpan bounds MaxTS - MinTS of a head chunk: 128 samples of ten fields scraped every
	// minute.
	HeadSpan = 15 * time.Minute
	// BlockSpan is the window a block covers, aligned to the Unix epoch: two hours of a
	// device is some 7,200 samples at ten fields every 10 s — a row large enough to be
	// compressed, few enough to decode for a page (docs/performance.md, "Storage layout").
	BlockSpan = 2 * time.Hour
	// MaxSpan bounds MaxTS - MinTS of every chunk, so that a reader looking for points at or
	// after t needs only the chunks starting after t - MaxSpan.
	MaxSpan = BlockSpan
)

// ErrCorrupt reports a chunk the engine cannot read.
var ErrCorrupt = errors.New("corrupt chunk")

// Decode appends a chunk's points to dst, sorted by Compare.
func Decode(data []byte, dst []Point) ([]Point, error) {
	if len(data) == 0 {
		return dst, ErrCorrupt
	}
	if data[0] == blockVersion {
		return decodeBlock(data, dst)
	}
	return decodeHead(data, dst)
}
