package usage_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
)

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// at is second s after t0 in Unix microseconds.
func at(s float64) int64 { return t0.UnixMicro() + int64(s*1e6) }

func series(ns string, pts ...telemetry.Point) telemetry.Series {
	return telemetry.Series{Namespace: ns, Points: pts}
}

func byNamespace(s telemetry.Series) (string, bool) { return s.Namespace, true }

func window(from, to float64) telemetry.TimeRange {
	return telemetry.TimeRange{Start: t0.Add(time.Duration(from * 1e9)), End: t0.Add(time.Duration(to * 1e9))}
}

func TestSamplesStandUntilTheNextOneOrTheGap(t *testing.T) {
	r := usage.New(window(0, 1000), time.Minute)
	// 0, 30, 60: 30 s each; 60 stands for the gap (60 s) as the next is 300 s later; 360
	// stands until the window's end is 640 s away, the gap first.
	r.Add("A", usage.UtilField, []telemetry.Series{series("",
		telemetry.Point{Time: at(0), Value: 10}, telemetry.Point{Time: at(30), Value: 20},
		telemetry.Point{Time: at(60), Value: 40}, telemetry.Point{Time: at(360), Value: 100})}, byNamespace)
	got := r.Usage()
	require.Len(t, got, 1)
	assert.InDelta(t, (30+30+60+60)/3600.0, got[0].GPUHours, 1e-12)
	assert.InDelta(t, (10*30+20*30+40*60+100*60)/180.0, got[0].MeanUtil, 1e-12)
	assert.Equal(t, int64(4), got[0].Samples)
	assert.Equal(t, 1, got[0].Devices)
	assert.True(t, math.IsNaN(got[0].PeakMemory), "no memory samples")
}

func TestOnlyTheWindowCounts(t *testing.T) {
	pts := []telemetry.Point{{Time: at(-20), Value: 300}, {Time: at(10), Value: 100}, {Time: at(40), Value: 200}}
	r := usage.New(window(0, 50), time.Minute)
	r.Add("A", usage.PowerField, []telemetry.Series{series("", pts...)}, byNamespace)
	// -20 stands for 0..10 of the window, 10 for 10..40, 40 for 40..50.
	want := (300*10.0 + 100*30 + 200*10) / 3.6e6
	got := r.Usage()
	require.Len(t, got, 1)
	assert.InDelta(t, want, got[0].EnergyKWh, 1e-15)

	// Adjacent windows add up to the window of both.
	var sum float64
	for _, w := range []telemetry.TimeRange{window(0, 25), window(25, 50)} {
		r := usage.New(w, time.Minute)
		r.Add("A", usage.PowerField, []telemetry.Series{series("", pts...)}, byNamespace)
		sum += r.Usage()[0].EnergyKWh
	}
	assert.InDelta(t, want, sum, 1e-15)
}

func TestTheNextSampleEndsAStandWhateverItsWorkload(t *testing.T) {
	r := usage.New(window(0, 100), time.Minute)
	a := series("team-a", telemetry.Point{Time: at(0), Value: 50}, telemetry.Point{Time: at(60), Value: 50})
	b := series("team-b", telemetry.Point{Time: at(30), Value: 10}, telemetry.Point{Time: at(90), Value: math.NaN()})
	r.Add("A", usage.UtilField, []telemetry.Series{a, b}, byNamespace)
	got := r.Usage()
	require.Len(t, got, 2)
	assert.Equal(t, "team-a", got[0].Group)
	assert.InDelta(t, 60/3600.0, got[0].GPUHours, 1e-12) // 0..30, 60..90
	assert.InDelta(t, 50, got[0].MeanUtil, 1e-12)
	assert.Equal(t, "team-b", got[1].Group)
	assert.InDelta(t, 40/3600.0, got[1].GPUHours, 1e-12) // 30..60, 90..100 (a blank)
	assert.InDelta(t, 10, got[1].MeanUtil, 1e-12, "a blank counts as time, not as utilisation")
}

func TestLeftOutSamplesStillEndTheStandBeforeThem(t *testing.T) {
	r := usage.New(window(0, 100), time.Minute)
	a := series("team-a", telemetry.Point{Time: at(0), Value: 1000})
	b := series("team-b", telemetry.Point{Time: at(10), Value: 2000}, telemetry.Point{Time: at(50), Value: 500})
	r.Add("A", usage.MemoryField, []telemetry.Series{a, b}, func(s telemetry.Series) (string, bool) {
		return s.Namespace, s.Namespace == "team-a"
	})
	got := r.Usage()
	require.Len(t, got, 1)
	assert.Equal(t, "team-a", got[0].Group)
	assert.Equal(t, 1000.0, got[0].PeakMemory)
	assert.True(t, math.IsNaN(got[0].MeanUtil))
}

func TestPeakMemoryIsOfTheSamplesStandingInTheWindow(t *testing.T) {
	peak := func(pts ...telemetry.Point) float64 {
		r := usage.New(window(0, 100), time.Minute)
		r.Add("A", usage.MemoryField, []telemetry.Series{series("", pts...)}, byNamespace)
		got := r.Usage()
		require.Len(t, got, 1)
		return got[0].PeakMemory
	}
	assert.Equal(t, 9000.0, peak(telemetry.Point{Time: at(-10), Value: 9000}, telemetry.Point{Time: at(20), Value: 4000}),
		"the sample before the window stands in it until the next")
	assert.Equal(t, 4000.0, peak(telemetry.Point{Time: at(-100), Value: 9000}, telemetry.Point{Time: at(20), Value: 4000}),
		"a sample more than the gap before the window does not")
	assert.Equal(t, 7000.0, peak(telemetry.Point{Time: at(20), Value: 4000}, telemetry.Point{Time: at(100), Value: 7000}),
		"a sample at the window's end is in it")
}
