package sqlstore

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChunkRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	works := []*workload{nil, {container: "c"}, {pod: "p", namespace: "ns"}, {"c", "p", "ns"}}
	pts := make([]point, 1000)
	ts := time.Date(1969, 12, 31, 23, 59, 0, 0, time.UTC).UnixMicro() // negative times too
	for i := range pts {
		ts += r.Int64N(3_000_000)
		pts[i] = point{ts: ts, metric: r.Int32N(40), value: r.NormFloat64() * 1e6, work: works[r.IntN(len(works))]}
		if i%2 == 0 {
			pts[i].value = math.Round(pts[i].value) // whole values take the short form
		}
	}
	pts[3].value, pts[4].value, pts[5].value = math.MaxFloat64, math.Copysign(0, -1), math.Inf(-1)
	pts[6].value, pts[8].value, pts[10].value = maxWhole, -maxWhole, maxWhole*2

	chunks, repeats := cutChunks(7, append([]point(nil), pts...), nil)
	require.Zero(t, repeats)
	var back []point
	for _, c := range chunks {
		require.Equal(t, int32(7), c.gpu)
		assert.LessOrEqual(t, c.samples, chunkMaxSamples)
		assert.Less(t, c.maxTS-c.minTS, chunkSpan.Microseconds())
		assert.Less(t, len(c.data), 2000, "stays under PostgreSQL's TOAST threshold")
		got, err := decodeChunk(c.data, nil)
		require.NoError(t, err)
		require.Len(t, got, c.samples)
		assert.Equal(t, c.minTS, got[0].ts)
		assert.Equal(t, c.maxTS, got[len(got)-1].ts)
		back = append(back, got...)
	}
	require.Len(t, back, len(pts))
	sorted := append([]point(nil), pts...)
	cutChunks(7, sorted, nil) // sorts in place, as the writer does
	for i := range back {
		require.Equal(t, sorted[i].ts, back[i].ts)
		require.Equal(t, sorted[i].metric, back[i].metric)
		require.Equal(t, math.Float64bits(sorted[i].value), math.Float64bits(back[i].value))
		if sorted[i].work == nil {
			require.Nil(t, back[i].work)
		} else {
			require.Equal(t, *sorted[i].work, *back[i].work)
		}
	}
}

// Chunks written before whole values took the short form are read as they were written.
func TestChunkVersion1(t *testing.T) {
	v1, err := hex.DecodeString("0101000170026e730380809ab5dab49c0602010000000000804c40000300000000000010524080ade204020000000000000008c0")
	require.NoError(t, err)
	got, err := decodeChunk(v1, nil)
	require.NoError(t, err)
	t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	assert.Equal(t, []point{
		{ts: t0, metric: 2, value: 57, work: &workload{pod: "p", namespace: "ns"}},
		{ts: t0, metric: 3, value: 72.25},
		{ts: t0 + 10_000_000, metric: 2, value: -3},
	}, got)
	again := encodeChunk(got)
	assert.Equal(t, byte(chunkVersion), again[0])
	assert.Less(t, len(again), len(v1)-10, "two of three values are whole")
}

func TestCorruptChunk(t *testing.T) {
	data := encodeChunk([]point{{ts: 1, metric: 2, value: 3, work: &workload{pod: "p"}}, {ts: 5, metric: 1, value: 4}})
	for n := range len(data) {
		_, err := decodeChunk(data[:n], nil)
		assert.ErrorIs(t, err, errCorruptChunk, "truncated to %d bytes", n)
	}
	_, err := decodeChunk(append(data, 0), nil)
	assert.ErrorIs(t, err, errCorruptChunk, "trailing bytes")
	bad := append([]byte{}, data...)
	bad[0] = 99
	_, err = decodeChunk(bad, nil)
	assert.ErrorIs(t, err, errCorruptChunk, "unknown version")
	huge := binary.AppendUvarint([]byte{chunkVersion}, math.MaxInt64)
	_, err = decodeChunk(huge, nil)
	assert.ErrorIs(t, err, errCorruptChunk, "a workload count larger than the chunk")
}

// FuzzDecodeChunk: no input makes the decoder panic, and the points of what it accepts
// survive encoding and decoding again. `go test -fuzz FuzzDecodeChunk ./adapters/sqlstore`
// explores further.
func FuzzDecodeChunk(f *testing.F) {
	f.Add(encodeChunk([]point{{ts: 1, metric: 2, value: 3, work: &workload{pod: "p"}}, {ts: 5, metric: 1, value: 4}}))
	f.Add(encodeChunk([]point{{ts: -7, metric: 0, value: math.Inf(1)}}))
	f.Add([]byte{chunkVersion, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		pts, err := decodeChunk(data, nil)
		if err != nil {
			return
		}
		again, err := decodeChunk(encodeChunk(pts), nil)
		require.NoError(t, err)
		require.Len(t, again, len(pts))
		for i := range pts {
			require.Equal(t, pts[i].ts, again[i].ts)
			require.Equal(t, pts[i].metric, again[i].metric)
			require.Equal(t, math.Float64bits(pts[i].value), math.Float64bits(again[i].value))
			require.Equal(t, pts[i].work == nil, again[i].work == nil)
			if pts[i].work != nil {
				require.Equal(t, *pts[i].work, *again[i].work)
			}
		}
	})
}

// BenchmarkDecodeChunk decodes a full chunk shaped as DCGM scrapes fill it: ten metrics a
// timestamp, 10 s apart, whole values.
func BenchmarkDecodeChunk(b *testing.B) {
	pts := make([]point, chunkMaxSamples)
	t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := range pts {
		pts[i] = point{ts: t0 + int64(i/10)*10_000_000, metric: int32(i%10 + 1), value: float64(i * 7 % 100)}
	}
	data := encodeChunk(pts)
	var dst []point
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var err error
		if dst, err = decodeChunk(data, dst[:0]); err != nil || len(dst) != len(pts) {
			b.Fatal(err, len(dst))
		}
	}
}
