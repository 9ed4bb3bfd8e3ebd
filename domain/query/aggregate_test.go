package query

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// memSeries holds series in memory, as the SeriesReader and Inventory contracts say: what
// the aggregation's own rules are tested over (the stores' side is in ports/portstest).
type memSeries struct {
	devices []telemetry.GPU
	series  []telemetry.Series // by device, metric, workload
}

func (m *memSeries) Series(_ context.Context, q telemetry.SeriesQuery, fn func(telemetry.Series) error) error {
	for _, s := range m.series {
		if !slices.Contains(q.GPUs, s.GPU) || (len(q.Metrics) > 0 && !slices.Contains(q.Metrics, s.Metric)) {
			continue
		}
		var in []telemetry.Point
		for _, p := range s.Points {
			t := time.UnixMicro(p.Time)
			if (q.Range.Start.IsZero() || !t.Before(q.Range.Start)) && (q.Range.End.IsZero() || !t.After(q.Range.End)) {
				in = append(in, p)
			}
		}
		if len(in) > 0 {
			s.Points = in
			if err := fn(s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memSeries) GPUs(_ context.Context, f telemetry.GPUFilter) ([]telemetry.GPUInfo, error) {
	var out []telemetry.GPUInfo
	for _, g := range m.devices {
		if f.UUID == "" || g.UUID == f.UUID {
			out = append(out, telemetry.GPUInfo{GPU: g})
		}
	}
	return out, nil
}

func (m *memSeries) Hosts(context.Context, telemetry.HostFilter) ([]telemetry.Host, error) {
	return nil, nil
}
func (m *memSeries) Metrics(context.Context) ([]string, error) { return nil, nil }

func (m *memSeries) Samples(context.Context, telemetry.SampleQuery, func(telemetry.Sample) error) (string, error) {
	return "", nil
}
func (m *memSeries) Latest(context.Context, string) ([]telemetry.Sample, error) { return nil, nil }
func (m *memSeries) Stats(context.Context) (telemetry.Stats, error)             { return telemetry.Stats{}, nil }

func sec(s float64) int64 { return int64(s * 1e6) }

func TestAggregateMergesWorkloadsAndOrdersByTimeThenName(t *testing.T) {
	m := &memSeries{
		devices: []telemetry.GPU{{UUID: "GPU-1"}},
		series: []telemetry.Series{
			{GPU: "GPU-1", Metric: "B", Points: []telemetry.Point{{Time: sec(-15), Value: 1}, {Time: sec(5), Value: 3}}},
			// A time-sliced GPU: one metric under two pods falls in the same buckets.
			{GPU: "GPU-1", Metric: "Z", Pod: "a", Points: []telemetry.Point{{Time: sec(1), Value: 2}, {Time: sec(25), Value: 8}}},
			{GPU: "GPU-1", Metric: "Z", Pod: "b", Points: []telemetry.Point{{Time: sec(-3), Value: 6}, {Time: sec(2), Value: 4},
				{Time: sec(3), Value: math.NaN()}}},
			{GPU: "GPU-1", Metric: "A", Points: []telemetry.Point{{Time: sec(9), Value: math.Inf(1)}}},
		},
	}
	svc := New(m, m, m, m)
	type row struct {
		Start  int64 // s
		Metric string
		Value  float64
		Count  int64
	}
	rows := func(agg telemetry.Aggregation) []row {
		got, err := svc.Aggregate(context.Background(), telemetry.AggregateQuery{GPU: "GPU-1", Step: 10 * time.Second, Agg: agg})
		require.NoError(t, err)
		assert.False(t, got.Truncated)
		var out []row
		for _, b := range got.Buckets {
			out = append(out, row{b.Start.Unix(), b.Metric, b.Value, b.Count})
		}
		return out
	}
	// Buckets before 1970 align to the epoch too; NaN and Inf are left out, and a bucket of
	// nothing else (A's) with them.
	assert.Equal(t, []row{{-20, "B", 1, 1}, {-10, "Z", 6, 1}, {0, "B", 3, 1}, {0, "Z", 3, 2}, {20, "Z", 8, 1}}, rows(telemetry.AggAvg))
	assert.Equal(t, []row{{-20, "B", 1, 1}, {-10, "Z", 6, 1}, {0, "B", 3, 1}, {0, "Z", 2, 2}, {20, "Z", 8, 1}}, rows(telemetry.AggMin))
	assert.Equal(t, []row{{-20, "B", 1, 1}, {-10, "Z", 6, 1}, {0, "B", 3, 1}, {0, "Z", 4, 2}, {20, "Z", 8, 1}}, rows(telemetry.AggLast))
	assert.Equal(t, []row{{-20, "B", 1, 1}, {-10, "Z", 1, 1}, {0, "B", 1, 1}, {0, "Z", 2, 2}, {20, "Z", 1, 1}}, rows(telemetry.AggCount))
}

func TestAggregateTruncatesAtMaxBuckets(t *testing.T) {
	n := MaxBuckets + 5
	late := telemetry.Series{GPU: "GPU-1", Metric: "M", Pod: "a"}
	early := telemetry.Series{GPU: "GPU-1", Metric: "M", Pod: "b"}
	for i := range n {
		// The later pod's series comes first: the first buckets still win.
		late.Points = append(late.Points, telemetry.Point{Time: sec(float64(n + i)), Value: 1})
		early.Points = append(early.Points, telemetry.Point{Time: sec(float64(i)), Value: 2})
	}
	m := &memSeries{devices: []telemetry.GPU{{UUID: "GPU-1"}}, series: []telemetry.Series{late, early}}
	res, err := New(m, m, m, m).Aggregate(context.Background(),
		telemetry.AggregateQuery{GPU: "GPU-1", Step: time.Second, Agg: telemetry.AggMax})
	require.NoError(t, err)
	assert.True(t, res.Truncated)
	got := res.Buckets
	require.Len(t, got, MaxBuckets)
	assert.Equal(t, int64(0), got[0].Start.Unix())
	assert.Equal(t, int64(MaxBuckets-1), got[len(got)-1].Start.Unix())
	assert.Equal(t, 2.0, got[len(got)-1].Value)
}

func TestAggregateTellsAnUnknownDeviceFromAnEmptyWindow(t *testing.T) {
	m := &memSeries{devices: []telemetry.GPU{{UUID: "GPU-1"}, {UUID: "GPU-1", Instance: "3"}}}
	svc := New(m, m, m, m)
	ctx := context.Background()
	for _, key := range []string{"GPU-1", telemetry.GPU{UUID: "GPU-1", Instance: "3"}.Key()} {
		got, err := svc.Aggregate(ctx, telemetry.AggregateQuery{GPU: key, Step: time.Minute, Agg: telemetry.AggAvg})
		require.NoError(t, err, key)
		assert.Empty(t, got.Buckets, key)
	}
	for _, key := range []string{"GPU-2", telemetry.GPU{UUID: "GPU-1", Instance: "4"}.Key()} {
		_, err := svc.Aggregate(ctx, telemetry.AggregateQuery{GPU: key, Step: time.Minute, Agg: telemetry.AggAvg})
		assert.ErrorIs(t, err, telemetry.ErrNotFound, key)
	}
	_, err := svc.Aggregate(ctx, telemetry.AggregateQuery{GPU: "GPU-1", Step: 1500 * time.Millisecond, Agg: telemetry.AggAvg})
	assert.ErrorIs(t, err, telemetry.ErrInvalid)
}
