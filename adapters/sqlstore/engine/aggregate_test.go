package engine

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuckets(t *testing.T) {
	type value struct {
		start  int64
		metric int32
		acc    Acc
	}
	var got []value
	done := func(start int64, metrics []int32, accs []Acc) error {
		for i, a := range accs {
			if a.Count > 0 {
				got = append(got, value{start, metrics[i], a})
			}
		}
		return nil
	}
	b := &Buckets{Step: 10}
	// Two runs, as two chunks hand them over; times before 1970 too.
	require.NoError(t, b.Add([]Point{{TS: -15, Metric: 2, Value: 1}, {TS: -12, Metric: 2, Value: 5}, {TS: -1, Metric: 7, Value: -2}}, done))
	require.NoError(t, b.Add([]Point{{TS: 0, Metric: 7, Value: 3}, {TS: 4, Metric: 7, Value: math.Inf(1)}, {TS: 9, Metric: 2, Value: 2},
		{TS: 30, Metric: 2, Value: 4}}, done))
	require.NoError(t, b.Close(done))
	assert.Equal(t, []value{
		{-20, 2, Acc{Count: 2, Sum: 6, Min: 1, Max: 5, LastTS: -12, Last: 5}},
		{-10, 7, Acc{Count: 1, Sum: -2, Min: -2, Max: -2, LastTS: -1, Last: -2}},
		{0, 2, Acc{Count: 1, Sum: 2, Min: 2, Max: 2, LastTS: 9, Last: 2}},
		{0, 7, Acc{Count: 2, Sum: math.Inf(1), Min: 3, Max: math.Inf(1), LastTS: 4, Last: math.Inf(1)}},
		{30, 2, Acc{Count: 1, Sum: 4, Min: 4, Max: 4, LastTS: 30, Last: 4}},
	}, got)
}
