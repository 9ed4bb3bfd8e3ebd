package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stored packs a device's points into chunks as a write stores them.
func stored(device int32, pts ...Point) []StoredChunk {
	chunks, _ := Cut(device, pts, nil)
	out := make([]StoredChunk, len(chunks))
	for i, c := range chunks {
		out[i] = StoredChunk{Device: c.Device, Data: c.Data}
	}
	return out
}

func TestTheFirstStoredWins(t *testing.T) {
	pod := &Workload{Pod: "a", Namespace: "ns"}
	// Stored before: device 1 at 10 and 30 (30 twice, the pod's sample its own), device 2 at 10.
	chunks := append(stored(1, Point{TS: 10, Metric: 7, Value: 1}, Point{TS: 20, Metric: 7, Value: 2},
		Point{TS: 30, Metric: 7, Value: 3}, Point{TS: 30, Metric: 7, Value: 4, Work: pod}),
		stored(2, Point{TS: 10, Metric: 7, Value: 5})...)
	first := []Run{{Device: 1, Points: []Point{
		{TS: 10, Metric: 7, Value: 100},             // stored: left out
		{TS: 15, Metric: 7, Value: 101},             // new
		{TS: 30, Metric: 8, Value: 102},             // another metric at a stored time: new
		{TS: 30, Metric: 7, Value: 103, Work: pod}}, // stored under the pod: left out
	}}
	second := []Run{
		{Device: 1, Points: []Point{{TS: 15, Metric: 7, Value: 200}, {TS: 40, Metric: 7, Value: 201}}}, // 15: the first batch's
		{Device: 3, Points: []Point{{TS: 10, Metric: 7, Value: 202}}},                                  // device 2's time, not its own
	}
	all := append(append([]Run{}, first...), second...)

	spans := SpansOf(all)
	assert.Equal(t, []Span{{1, 10, 30}, {1, 15, 40}, {3, 10, 10}}, spans)
	before, err := StoredAmong(all, chunks)
	require.NoError(t, err)
	assert.Equal(t, Stored{{Device: 1, Metric: 7, TS: 10}: true, {Device: 1, Metric: 7, TS: 30}: true,
		{Device: 1, Metric: 7, TS: 30, Work: *pod}: true}, before,
		"only points at the write's own times: 20 is a neighbour's, device 2 is not written")
	assert.True(t, before.HoldsAny(first))
	assert.False(t, before.HoldsAny(second))

	kept, repeated := FirstWins([][]Run{first, nil, second}, before)
	assert.Equal(t, []int{2, 0, 1}, repeated, "the batch not written counts nothing")
	assert.Equal(t, []Run{
		{Device: 1, Points: []Point{{TS: 15, Metric: 7, Value: 101}, {TS: 30, Metric: 8, Value: 102}, {TS: 40, Metric: 7, Value: 201}}},
		{Device: 3, Points: []Point{{TS: 10, Metric: 7, Value: 202}}},
	}, kept)
}

func TestNothingStoredFindsNothing(t *testing.T) {
	runs := []Run{{Device: 1, Points: []Point{{TS: 10, Metric: 7}}}}
	before, err := StoredAmong(runs, nil)
	require.NoError(t, err)
	assert.Nil(t, before)
	assert.False(t, before.HoldsAny(runs))
	assert.Empty(t, SpansOf([]Run{{Device: 1}}), "a run without points spans nothing")
	_, err = StoredAmong(runs, []StoredChunk{{Device: 1, Data: []byte{0xff, 0x01}}})
	assert.Error(t, err, "a chunk that does not decode")
}
