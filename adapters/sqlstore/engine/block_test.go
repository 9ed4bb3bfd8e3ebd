package engine

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrapes makes points as dcgm-exporter scrapes give them: every metric at every time, step
// apart (jitter µs either way), values from value(metric, i).
func scrapes(t0 int64, n, metrics int, step, jitter int64, r *rand.Rand, value func(m, i int) float64) []Point {
	pts := make([]Point, 0, n*metrics)
	for i := range n {
		ts := t0 + int64(i)*step
		if jitter > 0 {
			ts += r.Int64N(2*jitter) - jitter
		}
		for m := range metrics {
			pts = append(pts, Point{TS: ts, Metric: int32(m + 1), Value: value(m, i)})
		}
	}
	return pts
}

func requireSamePoints(t *testing.T, want, got []Point) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].TS, got[i].TS, "point %d", i)
		require.Equal(t, want[i].Metric, got[i].Metric, "point %d", i)
		require.Equal(t, math.Float64bits(want[i].Value), math.Float64bits(got[i].Value), "point %d: %v, %v", i, want[i].Value, got[i].Value)
		if want[i].Work == nil {
			require.Nil(t, got[i].Work, "point %d", i)
		} else {
			require.NotNil(t, got[i].Work, "point %d", i)
			require.Equal(t, *want[i].Work, *got[i].Work, "point %d", i)
		}
	}
}

func TestBlockRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	t0 := time.Date(2025, 7, 18, 12, 0, 0, 0, time.UTC).UnixMicro()
	cases := map[string][]Point{
		"whole values, steady scrapes": scrapes(t0, 720, 10, 10_000_000, 0, r, func(m, i int) float64 { return float64((m*37 + i) % 101) }),
		"decimals and jitter": scrapes(t0, 300, 4, 10_000_000, 5_000, r, func(m, i int) float64 {
			return math.Round(r.Float64()*300_000) / math.Pow10(m)
		}),
		"values no decimal holds": scrapes(t0, 50, 3, 1_000_000, 0, r, func(m, i int) float64 {
			return []float64{math.Pi * float64(i), math.NaN(), math.Inf(1 - 2*(i%2)), math.Copysign(0, -1), maxWhole * 4}[(m+i)%5]
		}),
		"negative times": scrapes(-3_600_000_000, 100, 2, 7_000_000, 0, r, func(m, i int) float64 { return -float64(i) }),
		"one point":      {{TS: t0, Metric: 9, Value: 0.5}},
	}
	// Series that come and go, some with workloads that change.
	works := []*Workload{nil, {Container: "c"}, {Pod: "p", Namespace: "ns"}}
	var gaps []Point
	for i := range 400 {
		for m := range 6 {
			if r.IntN(3) == 0 {
				continue
			}
			gaps = append(gaps, Point{TS: t0 + int64(i)*2_000_000, Metric: int32(m * 3), Value: float64(r.IntN(1000)) / 4,
				Work: works[(i/50+m)%len(works)]})
		}
	}
	cases["gaps and workloads"] = gaps
	for name, pts := range cases {
		t.Run(name, func(t *testing.T) {
			data := encodeBlock(pts)
			got, err := Decode(data, []Point{{TS: 1}}) // appended after what dst holds
			require.NoError(t, err)
			require.Equal(t, int64(1), got[0].TS)
			requireSamePoints(t, pts, got[1:])
		})
	}
	// Steady scrapes of whole values: the times take a byte each for all metrics together,
	// values one or two.
	pts := cases["whole values, steady scrapes"]
	assert.Less(t, len(encodeBlock(pts)), 2*len(pts))
}

func TestDecimalExponent(t *testing.T) {
	for _, c := range []struct {
		vs []float64
		e  int
		ok bool
	}{
		{[]float64{1, 2, 300}, 0, true},
		{[]float64{0.5, 12}, 1, true},
		{[]float64{123.456, 0.001}, 3, true},
		{[]float64{0.1, 0.2, 0.3}, 1, true},
		{[]float64{1e-15}, 15, true},
		{[]float64{1e-16}, 0, false},
		{[]float64{1.0 / 3}, 0, false},
		{[]float64{math.NaN()}, 0, false},
		{[]float64{math.Inf(1)}, 0, false},
		{[]float64{math.Copysign(0, -1)}, 0, false},
		{[]float64{1 << 60}, 0, false},
	} {
		e, ok := decimalExponent(c.vs)
		assert.Equal(t, c.ok, ok, "%v", c.vs)
		assert.Equal(t, c.e, e, "%v", c.vs)
	}
}

func TestCorruptBlock(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	pts := scrapes(0, 20, 3, 10_000_000, 0, r, func(m, i int) float64 { return float64(i) + []float64{0, 0.5, math.Pi}[m] })
	pts[4].Work = &Workload{Pod: "p"}
	data := encodeBlock(pts)
	for n := range len(data) {
		_, err := Decode(data[:n], nil)
		assert.ErrorIs(t, err, ErrCorrupt, "truncated to %d bytes", n)
	}
	_, err := Decode(append(data, 0), nil)
	assert.ErrorIs(t, err, ErrCorrupt, "trailing bytes")
}

// FuzzDecodeBlock: no input makes the block decoder panic, and what it accepts comes out in
// order and survives encoding again.
func FuzzDecodeBlock(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	f.Add(encodeBlock(scrapes(0, 5, 2, 10, 0, r, func(m, i int) float64 { return float64(i) / 4 })))
	f.Add(encodeBlock([]Point{{TS: -7, Metric: 0, Value: math.Inf(1), Work: &Workload{Pod: "p"}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || data[0] != blockVersion {
			return
		}
		pts, err := Decode(data, nil)
		var d SeriesDecoder
		n := 0
		_, _, serr := d.Decode(data, nil, func(run SeriesRun) { n += len(run.TS) })
		if err != nil || len(pts) == 0 {
			return // nor does it write an empty block
		}
		require.NoError(t, serr, "what Decode reads, series by series")
		require.Equal(t, len(pts), n)
		for i := 1; i < len(pts); i++ {
			if !Before(&pts[i-1], &pts[i]) {
				return // a block this encoder would not write: times out of order or a repeat
			}
		}
		again, err := Decode(encodeBlock(pts), nil)
		require.NoError(t, err)
		requireSamePoints(t, pts, again)
	})
}

// BenchmarkDecodeBlock decodes a block as a window of DCGM scrapes fills it: ten metrics
// every 10 s for two hours.
func BenchmarkDecodeBlock(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 10))
	pts := scrapes(0, 720, 10, 10_000_000, 2_000, r, func(m, i int) float64 { return float64((m*37 + i*i) % 101) })
	data := encodeBlock(pts)
	var dst []Point
	for b.Loop() {
		var err error
		if dst, err = Decode(data, dst[:0]); err != nil || len(dst) != len(pts) {
			b.Fatal(err, len(dst))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pts)), "ns/sample")
	b.ReportMetric(float64(len(data))/float64(len(pts)), "bytes/sample")
}

// skipVarints accepts exactly the varints binary.Uvarint reads.
func TestSkipVarints(t *testing.T) {
	cases := [][]byte{
		{0}, {0x7f, 1}, binary.AppendUvarint(nil, math.MaxUint64), {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02},
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, {0x80}, {}, {0x81, 0x01, 0x05},
		// Runs of one-byte varints, skipped eight at a time, then a long one, a bad one.
		binary.AppendUvarint(make([]byte, 19), math.MaxUint64),
		append(make([]byte, 17), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0),
		append(make([]byte, 9), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x03),
		binary.AppendUvarint(make([]byte, 5), math.MaxUint64), // across eight-byte words
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		data := make([]byte, r.IntN(40))
		for i := range data {
			data[i] = []byte{0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xff}[r.IntN(7)]
		}
		cases = append(cases, data)
	}
	for _, data := range cases {
		valid := 0 // varints before the end or the first bad one
		for rest := data; len(rest) > 0; valid++ {
			_, w := binary.Uvarint(rest)
			if w <= 0 {
				break
			}
			rest = rest[w:]
		}
		for k := 0; k <= valid+1; k++ {
			d := decoder{buf: data}
			d.skipVarints(k)
			if !assert.Equal(t, k <= valid, d.err == nil, "%x: %d varints", data, k) || d.err != nil {
				continue
			}
			rest := data
			for range k {
				_, w := binary.Uvarint(rest)
				rest = rest[w:]
			}
			assert.Len(t, d.buf, len(rest), "%x: %d varints skip as many bytes as they take", data, k)
		}
	}
}

// A SeriesDecoder gives Decode's points of the metrics kept, grouped by series, each in
// time order, and the chunk's bounds.
func TestSeriesDecoder(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	pts := scrapes(1_752_871_354_000_000, 40, 5, 30_000_000, 2_000, r, func(m, i int) float64 { return float64(m*100+i) / 8 })
	pod := &Workload{Pod: "train-0"}
	for i := range pts {
		if pts[i].Metric == 3 && i%3 == 0 {
			pts[i].Work = pod
		}
	}
	pts = append(pts[:7], pts[8:]...) // one series absent once
	var d SeriesDecoder
	for name, data := range map[string][]byte{"block": encodeBlock(pts), "head": encodeHead(pts[:HeadMaxSamples])} {
		t.Run(name, func(t *testing.T) {
			all, err := Decode(data, nil)
			require.NoError(t, err)
			keep := func(m int32) bool { return m != 2 }
			type key struct {
				metric int32
				pod    string
			}
			want := map[key][]Point{}
			for _, p := range all {
				if keep(p.Metric) {
					k := key{p.Metric, ""}
					if p.Work != nil {
						k.pod = p.Work.Pod
					}
					want[k] = append(want[k], Point{TS: p.TS, Metric: p.Metric, Value: p.Value, Work: p.Work})
				}
			}
			got := map[key][]Point{}
			first, last, err := d.Decode(data, keep, func(run SeriesRun) {
				k := key{run.Metric, ""}
				if run.Work != nil {
					k.pod = run.Work.Pod
				}
				require.NotContains(t, got, k, "a series once")
				require.Len(t, run.Values, len(run.TS))
				for i := range run.TS {
					got[k] = append(got[k], Point{TS: run.TS[i], Metric: run.Metric, Value: run.Values[i], Work: run.Work})
				}
			})
			require.NoError(t, err)
			assert.Equal(t, all[0].TS, first)
			assert.Equal(t, all[len(all)-1].TS, last)
			require.Len(t, got, len(want))
			for k := range want {
				requireSamePoints(t, want[k], got[k])
			}
		})
	}
	_, _, err := d.Decode([]byte{blockVersion, 0}, nil, func(SeriesRun) { t.Fatal("a corrupt block has no series") })
	assert.ErrorIs(t, err, ErrCorrupt)
}
