package engine

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// decoder reads a chunk, remembering the first error.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail() { d.err, d.buf = ErrCorrupt, nil }

func (d *decoder) byte() byte {
	if len(d.buf) < 1 {
		d.fail()
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	if len(d.buf) > 0 && d.buf[0] < 0x80 { // most ids, counts and deltas: one byte
		v := d.buf[0]
		d.buf = d.buf[1:]
		return uint64(v)
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// skipVarints moves past n varints, checking that each is one binary.Uvarint reads, without
// decoding them: a read of one series of a block skips the others'. It counts the varints
// ending in each eight bytes at once (a byte below 0x80 ends one), byte by byte only near
// the end, or where a varint may run past 64 bits.
func (d *decoder) skipVarints(n int) {
	buf := d.buf
	cont, i := 0, 0 // continuation bytes of the varint under way, before buf[i]
	for n > 0 {
		if len(buf)-i >= 8 {
			ends := ^binary.LittleEndian.Uint64(buf[i:]) & 0x8080808080808080
			k := bits.OnesCount64(ends)
			whole := k < n || k == n && ends>>63 == 1 // the word's bytes are all the varints' to skip
			if k > 0 && whole && cont+bits.TrailingZeros64(ends)/8 < binary.MaxVarintLen64-1 {
				n, i = n-k, i+8
				cont = bits.LeadingZeros64(ends) / 8
				continue
			}
		}
		if i == len(buf) {
			d.fail()
			return
		}
		switch b := buf[i]; {
		case b >= 0x80:
			if cont++; cont == binary.MaxVarintLen64 {
				d.fail()
				return
			}
		case cont == binary.MaxVarintLen64-1 && b > 1: // past 64 bits
			d.fail()
			return
		default:
			n, cont = n-1, 0
		}
		i++
	}
	d.buf = buf[i:]
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1) // zigzag, as binary.Varint
}

// count reads a count of items that each take at least min bytes of what is left, so that a
// corrupt count cannot make a reader allocate more than the chunk could hold.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.buf)/min) {
		d.fail()
		return 0
	}
	return int(n)
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

// workloads reads the table of workloads both formats start with.
func (d *decoder) workloads() []Workload {
	works := make([]Workload, d.count(3))
	for i := range works {
		works[i] = Workload{d.string(), d.string(), d.string()}
	}
	return works
}

// workloadTable numbers the distinct workloads of a chunk from 1, 0 meaning none.
type workloadTable struct{ works []*Workload }

func (t *workloadTable) index(w *Workload) uint64 {
	if w == nil {
		return 0
	}
	for i, known := range t.works {
		if known == w || *known == *w {
			return uint64(i + 1)
		}
	}
	t.works = append(t.works, w)
	return uint64(len(t.works))
}

// seed numbers the workloads of pts in CompareWork's order: a block's points at one time
// and metric then decode in Compare's order, as readers merge them.
func (t *workloadTable) seed(pts []Point) {
	for i := range pts {
		t.index(pts[i].Work)
	}
	slices.SortFunc(t.works, CompareWork)
}

func (t *workloadTable) appendTo(out []byte) []byte {
	out = binary.AppendUvarint(out, uint64(len(t.works)))
	for _, w := range t.works {
		for _, s := range []string{w.Container, w.Pod, w.Namespace} {
			out = binary.AppendUvarint(out, uint64(len(s)))
			out = append(out, s...)
		}
	}
	return out
}
