package engine

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWindowOf(t *testing.T) {
	span := BlockSpan.Microseconds()
	for _, ts := range []int64{0, 1, span - 1, span, 5*span + 7, -1, -span, -span - 1} {
		w := WindowOf(ts)
		assert.True(t, w.Holds(ts), "%d in %v", ts, w)
		assert.Equal(t, span, w.End-w.Start)
		assert.Zero(t, w.Start%span, "aligned")
	}
}

func TestPlan(t *testing.T) {
	t0 := time.Date(2025, 7, 18, 12, 10, 0, 0, time.UTC).UnixMicro() // 10 minutes into a window
	end := WindowOf(t0).End
	sealAt := end + SealAfter.Microseconds()
	for _, c := range []struct {
		name   string
		head   Head
		newest int64
		force  bool
		want   Action
	}{
		{"a window still open waits", Head{MinTS: t0, MaxTS: t0 + 60e6, Small: 3, SmallSamples: 30}, t0 + 60e6, false, Wait},
		{"small chunks enough to merge", Head{MinTS: t0, Small: 10, SmallSamples: MergeMinSamples}, t0, false, MergeHead},
		{"one small chunk is not merged", Head{MinTS: t0, Small: 1, SmallSamples: MergeMinSamples}, t0, false, Wait},
		{"many small chunks merge, however few their samples", Head{MinTS: t0, Small: MergeMinChunks, SmallSamples: 80}, t0, false, MergeHead},
		{"fewer wait for more samples", Head{MinTS: t0, Small: MergeMinChunks - 1, SmallSamples: 70}, t0, false, Wait},
		{"just before the window is sealed", Head{MinTS: t0}, sealAt - 1, false, Wait},
		{"a window over is sealed", Head{MinTS: t0, Small: 10, SmallSamples: MergeMinSamples}, sealAt, false, SealBlock},
		{"forced", Head{MinTS: t0}, t0, true, SealBlock},
	} {
		action, w := Plan(c.head, c.newest, c.force)
		assert.Equal(t, c.want, action, c.name)
		if action == SealBlock {
			assert.Equal(t, WindowOf(t0), w, c.name)
		}
	}
}

func TestSeal(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	w := WindowOf(time.Date(2025, 7, 18, 12, 0, 0, 0, time.UTC).UnixMicro())
	// Points from 10 minutes before the window to 10 minutes after, some twice.
	pts := scrapes(w.Start-600e6, 780+120, 5, 10_000_000, 0, r, func(m, i int) float64 { return float64(i % 7) })
	again := slices.Clone(pts[1000:1100])
	for i := range again {
		again[i].Value = -1 // a later write of the same samples: the first one stays
	}
	input := slices.Clone(pts)
	r.Shuffle(len(input), func(i, j int) { input[i], input[j] = input[j], input[i] })
	input = append(input, again...)

	chunks, _, repeats := Seal(4, w, input)
	assert.Equal(t, len(again), repeats)
	var got []Point
	var sealed int
	for _, c := range chunks {
		require.Equal(t, int32(4), c.Device)
		decoded, err := Decode(c.Data, nil)
		require.NoError(t, err)
		require.Len(t, decoded, c.Samples)
		assert.Equal(t, c.MinTS, decoded[0].TS)
		assert.Equal(t, c.MaxTS, decoded[len(decoded)-1].TS)
		assert.Less(t, c.MaxTS-c.MinTS, MaxSpan.Microseconds())
		if c.Sealed {
			sealed += c.Samples
			assert.Equal(t, byte(blockVersion), c.Data[0])
			assert.True(t, w.Holds(c.MinTS) && w.Holds(c.MaxTS), "a block stays in its window")
			assert.LessOrEqual(t, c.Samples, BlockMaxSamples)
		} else {
			assert.Equal(t, byte(headVersion), c.Data[0])
			assert.False(t, w.Holds(c.MinTS) || w.Holds(c.MaxTS), "the points outside the window stay in head chunks")
		}
		got = append(got, decoded...)
	}
	assert.Equal(t, 720*5, sealed)
	slices.SortFunc(got, Compare)
	requireSamePoints(t, pts, got)
}

// A window of a device scraped every second holds more than a block takes.
func TestSealSplitsLargeWindows(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	w := WindowOf(0)
	pts := scrapes(0, 7200, 4, 1_000_000, 0, r, func(m, i int) float64 { return float64(i) })
	chunks, _, _ := Seal(1, w, slices.Clone(pts))
	require.Len(t, chunks, 2)
	var got []Point
	for _, c := range chunks {
		assert.True(t, c.Sealed)
		decoded, err := Decode(c.Data, nil)
		require.NoError(t, err)
		got = append(got, decoded...)
	}
	requireSamePoints(t, pts, got)
}

func TestMerger(t *testing.T) {
	a := []Point{{TS: 1, Metric: 1, Value: 1}, {TS: 3, Metric: 1, Value: 1}, {TS: 5, Metric: 1, Value: 1}}
	b := []Point{{TS: 2, Metric: 1, Value: 2}, {TS: 3, Metric: 1, Value: 2}, {TS: 3, Metric: 2, Value: 2}, {TS: 6, Metric: 1, Value: 2}}
	for _, desc := range []bool{false, true} {
		m := Merger{Desc: desc}
		var out []Point
		emit := func(run []Point) error { out = append(out, run...); return nil }
		m.Add(slices.Clone(a))
		bound := int64(2) // b's start ascending, its end descending
		if desc {
			bound = 6
		}
		require.NoError(t, m.EmitRunBefore(bound, emit))
		m.Add(slices.Clone(b))
		require.NoError(t, m.EmitRunAll(emit))
		want := []Point{{TS: 1, Metric: 1, Value: 1}, {TS: 2, Metric: 1, Value: 2}, {TS: 3, Metric: 1, Value: 1},
			{TS: 3, Metric: 2, Value: 2}, {TS: 5, Metric: 1, Value: 1}, {TS: 6, Metric: 1, Value: 2}}
		if desc {
			slices.Reverse(want)
		}
		assert.Equal(t, want, out, "desc %v: (3, 1) once, from the chunk added first", desc)
	}
}

func TestCursor(t *testing.T) {
	for _, c := range []Cursor{{TS: 0, Metric: 0}, {TS: -5, Metric: 3}, {TS: 1752840000000000, Metric: 1 << 30},
		{TS: 7, Metric: 2, Work: &Workload{Container: "c:1", Pod: "p", Namespace: ""}}} {
		back, err := DecodeCursor(c.Encode())
		require.NoError(t, err)
		assert.Equal(t, c, back)
	}
	for _, bad := range []string{"", "x!", "djE6MQ" /* v1:1 */, "djI6MToy" /* v2:1:2 */, "djE6eDox" /* v1:x:1 */} {
		_, err := DecodeCursor(bad)
		assert.ErrorIs(t, err, ErrBadCursor, bad)
	}
}

// Take keeps a run that follows nothing pending rather than copy it, and hands back a
// buffer for the next.
func TestMergerTake(t *testing.T) {
	for _, desc := range []bool{false, true} {
		m := Merger{Desc: desc}
		a := []Point{{TS: 1, Metric: 1}, {TS: 2, Metric: 1}}
		spare := m.Take(a)
		assert.Empty(t, spare)
		b := []Point{{TS: 2, Metric: 1}, {TS: 3, Metric: 1}} // overlaps: merged, (2, 1) once
		if desc {
			b = []Point{{TS: 0, Metric: 1}, {TS: 1, Metric: 1}}
		}
		spare = m.Take(b)
		assert.Empty(t, spare)
		assert.Equal(t, 2, cap(spare), "the run's own buffer, to decode into again")
		var out []Point
		require.NoError(t, m.EmitRunAll(func(run []Point) error { out = append(out, run...); return nil }))
		want := []Point{{TS: 1, Metric: 1}, {TS: 2, Metric: 1}, {TS: 3, Metric: 1}}
		if desc {
			want = []Point{{TS: 2, Metric: 1}, {TS: 1, Metric: 1}, {TS: 0, Metric: 1}}
		}
		assert.Equal(t, want, out, "desc %v", desc)
	}
}

// A time-sliced GPU reports each metric once per pod at the same time: every pod's point is
// kept through head chunks, blocks and merges, each once, in Compare's order.
func TestTimeSlicedPointsAreEachKept(t *testing.T) {
	w := WindowOf(time.Date(2025, 7, 18, 12, 0, 0, 0, time.UTC).UnixMicro())
	pods := []*Workload{{Pod: "c"}, nil, {Pod: "a"}, {Pod: "b", Namespace: "x"}} // not in order
	var pts []Point
	for i := range 50 {
		for _, m := range []int32{2, 1} {
			for _, wl := range pods {
				if wl != nil && wl.Pod == "a" && i < 10 {
					continue // a pod that comes later, sorting before those already there
				}
				pts = append(pts, Point{TS: w.Start + int64(i)*10e6, Metric: m, Value: float64(i), Work: wl})
			}
		}
	}
	want := slices.Clone(pts)
	slices.SortFunc(want, Compare)
	for i := 1; i < len(want); i++ {
		require.True(t, Before(&want[i-1], &want[i]), "Compare orders workloads: %v %v", want[i-1], want[i])
	}
	head, repeats := Cut(1, slices.Clone(pts), nil)
	require.Zero(t, repeats, "no pod's point is another's repeat")
	sealed, _, repeats := Seal(1, w, append(slices.Clone(pts), pts[:20]...))
	assert.Equal(t, 20, repeats, "a point delivered twice is kept once")
	for _, chunks := range [][]Chunk{head, sealed} {
		m := Merger{}
		var got []Point
		for _, c := range chunks {
			decoded, err := Decode(c.Data, nil)
			require.NoError(t, err)
			require.True(t, slices.IsSortedFunc(decoded, Compare), "a chunk decodes in Compare's order")
			m.Add(decoded)
			again, err := Decode(c.Data, nil) // the same chunk read twice merges to one
			require.NoError(t, err)
			m.Add(again)
		}
		require.NoError(t, m.EmitRunAll(func(run []Point) error { got = append(got, run...); return nil }))
		requireSamePoints(t, want, got)
	}
}
