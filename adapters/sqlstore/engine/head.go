package engine

import (
	"encoding/binary"
	"math"
	"slices"
)

// headVersion is the first byte of every head chunk written. The layout after it:
//
//	uvarint workloads; each: 3 × (uvarint length, bytes) for container, pod, namespace
//	uvarint samples
//	each sample: time (varint Unix µs for the first, uvarint delta after), uvarint metric id,
//	             uvarint workload<<1 | whole (workload 0 none, k the k-th above), then the
//	             value: a zigzag varint when whole, else an 8-byte little-endian float64
//
// Most DCGM values are whole numbers (percentages, MHz, °C, MiB), which take one to three
// bytes instead of eight: about 5 bytes a sample. (Version 1, with a plain workload index
// and always the 8-byte value, was the pre-release store's first.)
const headVersion = 2

// maxWhole bounds the whole values stored as integers: every integer up to it is exactly a
// float64.
const maxWhole = 1 << 53

// whole reports whether v is stored as an integer: it is one, within ±maxWhole, and not -0.
func whole(v float64) bool {
	return v == math.Trunc(v) && math.Abs(v) <= maxWhole && (v != 0 || !math.Signbit(v))
}

// Cut sorts one device's points, keeps one of each metric and time (the earliest in pts),
// and packs them into head chunks within HeadMaxSamples and HeadSpan. It returns the chunks
// appended to out and how many points it left out as repeats.
func Cut(device int32, pts []Point, out []Chunk) ([]Chunk, int) {
	pts, repeats := sortUnique(pts)
	span := HeadSpan.Microseconds()
	for len(pts) > 0 {
		n := 1
		for n < len(pts) && n < HeadMaxSamples && pts[n].TS-pts[0].TS < span {
			n++
		}
		out = append(out, Chunk{Device: device, MinTS: pts[0].TS, MaxTS: pts[n-1].TS, Samples: n, Data: encodeHead(pts[:n])})
		pts = pts[n:]
	}
	return out, repeats
}

// sortUnique sorts points by Compare, keeping the earliest of each time, metric and
// workload, and says how many it dropped.
func sortUnique(pts []Point) ([]Point, int) {
	slices.SortStableFunc(pts, Compare)
	n := len(pts)
	pts = slices.CompactFunc(pts, func(a, b Point) bool { return Same(&a, &b) })
	return pts, n - len(pts)
}

// encodeHead packs points sorted by Compare.
func encodeHead(pts []Point) []byte {
	var works workloadTable
	body := make([]byte, 0, 8*len(pts))
	prev := int64(0)
	for i := range pts {
		p := &pts[i]
		if i == 0 {
			body = binary.AppendVarint(body, p.TS)
		} else {
			body = binary.AppendUvarint(body, uint64(p.TS-prev))
		}
		prev = p.TS
		body = binary.AppendUvarint(body, uint64(p.Metric))
		if whole(p.Value) {
			body = binary.AppendUvarint(body, works.index(p.Work)<<1|1)
			body = binary.AppendVarint(body, int64(p.Value))
		} else {
			body = binary.AppendUvarint(body, works.index(p.Work)<<1)
			body = binary.LittleEndian.AppendUint64(body, math.Float64bits(p.Value))
		}
	}
	out := make([]byte, 0, len(body)+16)
	out = append(out, headVersion)
	out = works.appendTo(out)
	out = binary.AppendUvarint(out, uint64(len(pts)))
	return append(out, body...)
}

// decodeHead appends a head chunk's points to dst.
func decodeHead(data []byte, dst []Point) ([]Point, error) {
	dst, _, _, err := decodeHeadMetrics(data, dst, nil)
	return dst, err
}

// decodeHeadMetrics appends a head chunk's points of the metrics keep accepts (all when
// nil) to dst, and returns the chunk's first and last times, of whichever metric.
func decodeHeadMetrics(data []byte, dst []Point, keep func(metric int32) bool) (pts []Point, first, last int64, err error) {
	d := decoder{buf: data}
	if d.byte() != headVersion {
		return dst, 0, 0, ErrCorrupt
	}
	works := d.workloads()
	n := d.count(3)
	if d.err != nil || n == 0 {
		return dst, 0, 0, ErrCorrupt // an empty chunk is never written
	}
	if keep == nil {
		dst = slices.Grow(dst, n)
	}
	var ts int64
	for i := range n {
		if i == 0 {
			ts = d.varint()
			first = ts
		} else {
			ts += int64(d.uvarint())
		}
		p := Point{TS: ts, Metric: int32(d.uvarint())}
		w := d.uvarint()
		w, isWhole := w>>1, w&1 == 1
		if w > 0 && w <= uint64(len(works)) {
			p.Work = &works[w-1]
		} else if w != 0 {
			return dst, 0, 0, ErrCorrupt
		}
		if isWhole {
			p.Value = float64(d.varint())
		} else {
			p.Value = math.Float64frombits(d.uint64())
		}
		if keep == nil || keep(p.Metric) {
			dst = append(dst, p)
		}
	}
	if d.err != nil || len(d.buf) != 0 {
		return dst, 0, 0, ErrCorrupt
	}
	return dst, first, ts, nil
}
