package engine

import (
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
		if err != nil {
			return
		}
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
