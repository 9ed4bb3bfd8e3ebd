package engine

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rollupPoints is two hours of a device: three metrics every 10 s, decimals, a counter that
// resets, a metric two pods share, and a gap.
func rollupPoints(r *rand.Rand) []Point {
	t0 := time.Date(2025, 7, 18, 12, 0, 0, 0, time.UTC).UnixMicro()
	pods := []*Workload{{Pod: "a", Namespace: "ml"}, {Pod: "b", Namespace: "ml"}}
	var pts []Point
	counter := 0.0
	for i := range 720 {
		ts := t0 + int64(i)*10_000_000
		if i >= 100 && i < 160 {
			continue // silent for ten minutes
		}
		counter += float64(r.IntN(50))
		if i == 400 {
			counter = 3 // a reset
		}
		pts = append(pts,
			Point{TS: ts, Metric: 1, Value: float64(r.IntN(101))},
			Point{TS: ts, Metric: 2, Value: math.Round(r.Float64()*400_000) / 1000},
			Point{TS: ts, Metric: 3, Value: counter},
			Point{TS: ts, Metric: 4, Value: float64(r.IntN(9)), Work: pods[0]},
			Point{TS: ts, Metric: 4, Value: float64(r.IntN(9)), Work: pods[1]},
		)
	}
	return pts
}

// bruteBuckets computes a bucket of step by its definition, from every point in it.
func bruteBuckets(pts []Point, step time.Duration) map[seriesKey]map[int64]Bucket {
	out := map[seriesKey]map[int64]Bucket{}
	prev := map[seriesKey]map[int64]float64{}
	for _, p := range pts {
		k := keyOf(p.Metric, p.Work)
		start := floorDiv(p.TS, step.Microseconds()) * step.Microseconds()
		if out[k] == nil {
			out[k], prev[k] = map[int64]Bucket{}, map[int64]float64{}
		}
		b, seen := out[k][start]
		if !seen {
			b = Bucket{Start: start, Metric: p.Metric, Work: p.Work, Min: p.Value, Max: p.Value, First: p.Value}
		} else {
			last := prev[k][start]
			if p.Value < last {
				b.Increase += p.Value
			} else {
				b.Increase += p.Value - last
			}
		}
		b.Count++
		b.Sum += p.Value
		b.Min, b.Max, b.Last = math.Min(b.Min, p.Value), math.Max(b.Max, p.Value), p.Value
		b.LastAt = p.TS
		prev[k][start] = p.Value
		out[k][start] = b
	}
	return out
}

func requireBucketsMatch(t *testing.T, want map[seriesKey]map[int64]Bucket, got []Bucket) {
	t.Helper()
	n := 0
	for _, m := range want {
		n += len(m)
	}
	require.Len(t, got, n)
	for i, b := range got {
		if i > 0 {
			require.LessOrEqual(t, got[i-1].Start, b.Start, "sorted by start")
		}
		w, ok := want[keyOf(b.Metric, b.Work)][b.Start]
		require.True(t, ok, "bucket %d: %+v", i, b)
		assert.Equal(t, w.Count, b.Count, "count of %+v", b)
		assert.InDelta(t, w.Sum, b.Sum, 1e-9*math.Abs(w.Sum), "sum of %+v", b)
		assert.Equal(t, []float64{w.Min, w.Max, w.First, w.Last}, []float64{b.Min, b.Max, b.First, b.Last}, "%+v", b)
		assert.Equal(t, w.LastAt, b.LastAt, "time of the last of %+v", b)
		assert.InDelta(t, w.Increase, b.Increase, 1e-9*math.Abs(w.Increase), "increase of %+v", b)
	}
}

func TestRollupIsEveryBucketByDefinition(t *testing.T) {
	pts := rollupPoints(rand.New(rand.NewPCG(1, 2)))
	for _, tier := range Tiers {
		t.Run(tier.Step.String(), func(t *testing.T) {
			requireBucketsMatch(t, bruteBuckets(pts, tier.Step), Rollup(pts, tier.Step))
		})
	}
}

// The hourly tier is computed from 5-minute rows: it must equal the hour computed from the
// samples, increases across bucket edges and resets included.
func TestCoarsenEqualsRollupOfTheSamples(t *testing.T) {
	pts := rollupPoints(rand.New(rand.NewPCG(5, 6)))
	fine := Rollup(pts, Tiers[0].Step)
	requireBucketsMatch(t, bruteBuckets(pts, time.Hour), Coarsen(fine, time.Hour))
	assert.Equal(t, Rollup(pts, time.Hour), Coarsen(fine, time.Hour), "the same bits: sums of decimals are exact")
}

func TestRollupRoundTrip(t *testing.T) {
	pts := rollupPoints(rand.New(rand.NewPCG(7, 8)))
	for _, tier := range Tiers {
		bs := Rollup(pts, tier.Step)
		data := EncodeRollup(bs)
		got, err := DecodeRollup(data, nil)
		require.NoError(t, err)
		require.Equal(t, len(bs), len(got))
		for i := range bs {
			if bs[i].Work != nil {
				require.NotNil(t, got[i].Work)
				require.Equal(t, *bs[i].Work, *got[i].Work)
				got[i].Work = bs[i].Work
			}
		}
		assert.Equal(t, bs, got, tier.Step)
		t.Logf("%s: %d buckets of %d samples in %d bytes", tier.Step, len(bs), len(pts), len(data))
	}
	_, err := DecodeRollup([]byte{blockVersion, 0, 1}, nil)
	assert.ErrorIs(t, err, ErrCorrupt)
}

func TestExactSumOfDecimals(t *testing.T) {
	var s exactSum
	for range 3 {
		s.add(0.1)
	}
	s.add(0.2)
	assert.Equal(t, 0.5, s.value(), "not 0.5000000000000001")
	s.add(math.Pi)
	assert.InDelta(t, 0.5+math.Pi, s.value(), 1e-12, "a value of no few decimals falls back to a float sum")
}
