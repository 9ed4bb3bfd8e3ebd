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

func TestChunkRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	works := []*Workload{nil, {Container: "c"}, {Pod: "p", Namespace: "ns"}, {Container: "c", Pod: "p", Namespace: "ns"}}
	pts := make([]Point, 1000)
	ts := time.Date(1969, 12, 31, 23, 59, 0, 0, time.UTC).UnixMicro() // negative times too
	for i := range pts {
		ts += r.Int64N(3_000_000)
		pts[i] = Point{TS: ts, Metric: r.Int32N(40), Value: r.NormFloat64() * 1e6, Work: works[r.IntN(len(works))]}
		if i%2 == 0 {
			pts[i].Value = math.Round(pts[i].Value) // whole values take the short form
		}
	}
	pts[3].Value, pts[4].Value, pts[5].Value = math.MaxFloat64, math.Copysign(0, -1), math.Inf(-1)
	pts[6].Value, pts[8].Value, pts[10].Value = maxWhole, -maxWhole, maxWhole*2

	chunks, repeats := Cut(7, append([]Point(nil), pts...), nil)
	require.Zero(t, repeats)
	var back []Point
	for _, c := range chunks {
		require.Equal(t, int32(7), c.Device)
		assert.LessOrEqual(t, c.Samples, HeadMaxSamples)
		assert.Less(t, c.MaxTS-c.MinTS, HeadSpan.Microseconds())
		assert.Less(t, len(c.Data), 2000, "stays under PostgreSQL's TOAST threshold")
		got, err := Decode(c.Data, nil)
		require.NoError(t, err)
		require.Len(t, got, c.Samples)
		assert.Equal(t, c.MinTS, got[0].TS)
		assert.Equal(t, c.MaxTS, got[len(got)-1].TS)
		back = append(back, got...)
	}
	require.Len(t, back, len(pts))
	sorted := append([]Point(nil), pts...)
	Cut(7, sorted, nil) // sorts in place, as the writer does
	for i := range back {
		require.Equal(t, sorted[i].TS, back[i].TS)
		require.Equal(t, sorted[i].Metric, back[i].Metric)
		require.Equal(t, math.Float64bits(sorted[i].Value), math.Float64bits(back[i].Value))
		if sorted[i].Work == nil {
			require.Nil(t, back[i].Work)
		} else {
			require.Equal(t, *sorted[i].Work, *back[i].Work)
		}
	}
}

func TestCorruptChunk(t *testing.T) {
	data := encodeHead([]Point{{TS: 1, Metric: 2, Value: 3, Work: &Workload{Pod: "p"}}, {TS: 5, Metric: 1, Value: 4}})
	for n := range len(data) {
		_, err := Decode(data[:n], nil)
		assert.ErrorIs(t, err, ErrCorrupt, "truncated to %d bytes", n)
	}
	_, err := Decode(append(data, 0), nil)
	assert.ErrorIs(t, err, ErrCorrupt, "trailing bytes")
	bad := append([]byte{}, data...)
	bad[0] = 99
	_, err = Decode(bad, nil)
	assert.ErrorIs(t, err, ErrCorrupt, "unknown version")
	huge := binary.AppendUvarint([]byte{headVersion}, math.MaxInt64)
	_, err = Decode(huge, nil)
	assert.ErrorIs(t, err, ErrCorrupt, "a Workload count larger than the chunk")
}

// FuzzDecodeChunk: no input makes the decoder panic, and the points of what it accepts
// survive encoding and decoding again. `go test -fuzz FuzzDecodeChunk ./adapters/sqlstore`
// explores further.
func FuzzDecodeChunk(f *testing.F) {
	f.Add(encodeHead([]Point{{TS: 1, Metric: 2, Value: 3, Work: &Workload{Pod: "p"}}, {TS: 5, Metric: 1, Value: 4}}))
	f.Add(encodeHead([]Point{{TS: -7, Metric: 0, Value: math.Inf(1)}}))
	f.Add([]byte{headVersion, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		pts, err := Decode(data, nil)
		if err != nil || len(pts) == 0 {
			return // an empty chunk is never written, and reads as corrupt
		}
		again, err := Decode(encodeHead(pts), nil)
		require.NoError(t, err)
		require.Len(t, again, len(pts))
		for i := range pts {
			require.Equal(t, pts[i].TS, again[i].TS)
			require.Equal(t, pts[i].Metric, again[i].Metric)
			require.Equal(t, math.Float64bits(pts[i].Value), math.Float64bits(again[i].Value))
			require.Equal(t, pts[i].Work == nil, again[i].Work == nil)
			if pts[i].Work != nil {
				require.Equal(t, *pts[i].Work, *again[i].Work)
			}
		}
	})
}

// BenchmarkDecodeChunk decodes a full chunk shaped as DCGM scrapes fill it: ten metrics a
// timestamp, 10 s apart, whole values.
func BenchmarkDecodeChunk(b *testing.B) {
	pts := make([]Point, HeadMaxSamples)
	t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := range pts {
		pts[i] = Point{TS: t0 + int64(i/10)*10_000_000, Metric: int32(i%10 + 1), Value: float64(i * 7 % 100)}
	}
	data := encodeHead(pts)
	var dst []Point
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var err error
		if dst, err = Decode(data, dst[:0]); err != nil || len(dst) != len(pts) {
			b.Fatal(err, len(dst))
		}
	}
}
