package sqlstore

import (
	"cmp"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"time"
)

// Samples are stored in chunks: one row holds a run of one GPU's samples, sorted by time and
// metric id and packed in a compact binary form (about 5 bytes a sample, 11 when values have
// fractions, against some 60 for a row per sample, plus its index entry). Readers fetch the
// few chunks overlapping a window and merge them; see scan. Two bounds keep chunks cheap to
// find and to write:
const (
	// chunkMaxSamples keeps a row below PostgreSQL's 2 kB TOAST threshold, so rows are
	// neither compressed nor moved out of line on write.
	chunkMaxSamples = 128
	// chunkSpan bounds max_ts - min_ts of every chunk, so that a reader looking for
	// samples at or after t needs only the chunks starting after t - chunkSpan. Long enough
	// for 128 samples of ten fields scraped every minute; the indexes hold both ends of a
	// chunk, so that the chunks a reader skips cost little. (Chunks written before version
	// 5 of the schema span under a minute.)
	chunkSpan = 15 * time.Minute
)

// point is a sample in the store's terms.
type point struct {
	ts     int64 // Unix microseconds, the resolution both databases keep
	metric int32
	value  float64
	work   *workload // nil when the sample names no workload
}

// workload names the container, pod and namespace using a GPU.
type workload struct{ container, pod, namespace string }

// before orders points by time, then metric id: the order of pages and of cursors.
func before(a, b *point) bool { return a.ts < b.ts || (a.ts == b.ts && a.metric < b.metric) }

func comparePoints(a, b point) int {
	return cmp.Or(cmp.Compare(a.ts, b.ts), cmp.Compare(a.metric, b.metric))
}

// chunkRow is a row of the chunks table.
type chunkRow struct {
	gpu          int32
	minTS, maxTS int64
	samples      int
	data         []byte
	sealed       bool // full: the compactor leaves it alone (compact.go)
}

// cutChunks sorts one GPU's points, keeps one of each metric and time (the earliest in pts),
// and packs them into chunks within both bounds. It returns the chunks appended to out and
// how many points it left out as repeats.
func cutChunks(gpu int32, pts []point, out []chunkRow) ([]chunkRow, int) {
	slices.SortStableFunc(pts, comparePoints)
	n := len(pts)
	pts = slices.CompactFunc(pts, func(a, b point) bool { return a.ts == b.ts && a.metric == b.metric })
	repeats := n - len(pts)
	span := chunkSpan.Microseconds()
	for len(pts) > 0 {
		n := 1
		for n < len(pts) && n < chunkMaxSamples && pts[n].ts-pts[0].ts < span {
			n++
		}
		out = append(out, chunkRow{gpu: gpu, minTS: pts[0].ts, maxTS: pts[n-1].ts, samples: n, data: encodeChunk(pts[:n]),
			sealed: n == chunkMaxSamples})
		pts = pts[n:]
	}
	return out, repeats
}

// chunkVersion is the first byte of every chunk written. The layout after it:
//
//	uvarint workloads; each: 3 × (uvarint length, bytes) for container, pod, namespace
//	uvarint samples
//	each sample: time (varint Unix µs for the first, uvarint delta after), uvarint metric id,
//	             uvarint workload<<1 | whole (workload 0 none, k the k-th above), then the
//	             value: a zigzag varint when whole, else an 8-byte little-endian float64
//
// Most DCGM values are whole numbers (percentages, MHz, °C, MiB), which take one to three
// bytes instead of eight: chunks are about half as large as in version 1, whose samples
// have a plain workload index and always the 8-byte value. Both are read.
const chunkVersion = 2

// maxWhole bounds the whole values stored as integers: every integer up to it is exactly a
// float64.
const maxWhole = 1 << 53

// whole reports whether v is stored as an integer: it is one, within ±maxWhole, and not -0.
func whole(v float64) bool {
	return v == math.Trunc(v) && math.Abs(v) <= maxWhole && (v != 0 || !math.Signbit(v))
}

// encodeChunk packs points sorted by comparePoints.
func encodeChunk(pts []point) []byte {
	var works []*workload
	index := func(w *workload) uint64 {
		if w == nil {
			return 0
		}
		for i, known := range works {
			if known == w || *known == *w {
				return uint64(i + 1)
			}
		}
		works = append(works, w)
		return uint64(len(works))
	}
	body := make([]byte, 0, 8*len(pts))
	prev := int64(0)
	for i := range pts {
		p := &pts[i]
		if i == 0 {
			body = binary.AppendVarint(body, p.ts)
		} else {
			body = binary.AppendUvarint(body, uint64(p.ts-prev))
		}
		prev = p.ts
		body = binary.AppendUvarint(body, uint64(p.metric))
		if whole(p.value) {
			body = binary.AppendUvarint(body, index(p.work)<<1|1)
			body = binary.AppendVarint(body, int64(p.value))
		} else {
			body = binary.AppendUvarint(body, index(p.work)<<1)
			body = binary.LittleEndian.AppendUint64(body, math.Float64bits(p.value))
		}
	}
	out := make([]byte, 0, len(body)+16)
	out = append(out, chunkVersion)
	out = binary.AppendUvarint(out, uint64(len(works)))
	for _, w := range works {
		for _, s := range []string{w.container, w.pod, w.namespace} {
			out = binary.AppendUvarint(out, uint64(len(s)))
			out = append(out, s...)
		}
	}
	out = binary.AppendUvarint(out, uint64(len(pts)))
	return append(out, body...)
}

var errCorruptChunk = errors.New("corrupt chunk")

// decodeChunk appends a chunk's points to dst, in the order they were encoded.
func decodeChunk(data []byte, dst []point) ([]point, error) {
	d := decoder{buf: data}
	version := d.byte()
	if version != 1 && version != chunkVersion {
		return dst, errCorruptChunk
	}
	nw := d.uvarint()
	if nw > uint64(len(data)) { // each takes at least three bytes
		return dst, errCorruptChunk
	}
	works := make([]workload, nw)
	for i := range works {
		works[i] = workload{d.string(), d.string(), d.string()}
	}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(data)) {
		return dst, errCorruptChunk
	}
	dst = slices.Grow(dst, int(n))
	var ts int64
	for i := range n {
		if i == 0 {
			ts = d.varint()
		} else {
			ts += int64(d.uvarint())
		}
		p := point{ts: ts, metric: int32(d.uvarint())}
		w, isWhole := d.uvarint(), false
		if version > 1 {
			w, isWhole = w>>1, w&1 == 1
		}
		if w > 0 && w <= uint64(len(works)) {
			p.work = &works[w-1]
		} else if w != 0 {
			return dst, errCorruptChunk
		}
		if isWhole {
			p.value = float64(d.varint())
		} else {
			p.value = math.Float64frombits(d.uint64())
		}
		dst = append(dst, p)
	}
	if d.err != nil || len(d.buf) != 0 {
		return dst, errCorruptChunk
	}
	return dst, nil
}

// decoder reads a chunk, remembering the first error.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail() { d.err, d.buf = errCorruptChunk, nil }

func (d *decoder) byte() byte {
	if len(d.buf) < 1 {
		d.fail()
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

// advance consumes n bytes that a varint reader reported (n ≤ 0: malformed), telling whether
// the value is good.
func (d *decoder) advance(n int) bool {
	if n <= 0 {
		d.fail()
		return false
	}
	d.buf = d.buf[n:]
	return true
}

func (d *decoder) uvarint() uint64 {
	if len(d.buf) > 0 && d.buf[0] < 0x80 { // most metric ids, workloads and values: one byte
		v := d.buf[0]
		d.buf = d.buf[1:]
		return uint64(v)
	}
	v, n := binary.Uvarint(d.buf)
	if !d.advance(n) {
		return 0
	}
	return v
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1) // zigzag, as binary.Varint
}

func (d *decoder) uint64() uint64 {
	if len(d.buf) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail()
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}
