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

func TestSamplesStandUntilTheNextOneOrAnInterval(t *testing.T) {
	r := usage.New(window(0, 1000), time.Minute)
	// Every 30 s, then silent for 300 s: more than twice the interval, so 60 stands for one
	// interval (30 s), not until 360; 360, the last, stands for one interval too.
	r.Add("A", usage.UtilField, []telemetry.Series{series("",
		telemetry.Point{Time: at(0), Value: 10}, telemetry.Point{Time: at(30), Value: 20},
		telemetry.Point{Time: at(60), Value: 40}, telemetry.Point{Time: at(360), Value: 100})}, byNamespace)
	got := r.Usage()
	require.Len(t, got, 1)
	assert.InDelta(t, (30+30+30+30)/3600.0, got[0].GPUHours, 1e-12)
	assert.InDelta(t, (10*30+20*30+40*30+100*30)/120.0, got[0].MeanUtil, 1e-12)
	assert.Equal(t, int64(4), got[0].Samples)
	assert.Equal(t, 1, got[0].Devices)
	assert.Equal(t, map[string]int{usage.SignalUtil: 1}, got[0].UtilSignals)
	assert.True(t, math.IsNaN(got[0].PeakMemory), "no memory samples")
}

// every returns a point every step seconds in [from, to), of value v.
func every(from, to, step, v float64) []telemetry.Point {
	var out []telemetry.Point
	for s := from; s < to; s += step {
		out = append(out, telemetry.Point{Time: at(s), Value: v})
	}
	return out
}

func byPod(s telemetry.Series) (string, bool) { return s.Pod, true }

// Three pods time-slicing one GPU for an hour, each reported at every scrape: a third of a
// GPU-hour and of the energy each, one GPU-hour and the GPU's energy in all.
func TestTimeSlicedGPUSplitsEqually(t *testing.T) {
	r := usage.New(window(0, 3600), usage.DefaultGap)
	fields := map[string][]telemetry.Series{}
	for _, pod := range []string{"a", "b", "c"} {
		fields[usage.UtilField] = append(fields[usage.UtilField], telemetry.Series{Pod: pod, Points: every(0, 3600, 15, 60)})
		fields[usage.PowerField] = append(fields[usage.PowerField], telemetry.Series{Pod: pod, Points: every(0, 3600, 15, 300)})
	}
	r.AddDevice(usage.Device{Key: "GPU-1", Share: 1}, fields, byPod)
	got := r.Usage()
	require.Len(t, got, 3)
	var hours, kwh float64
	for _, u := range got {
		assert.InDelta(t, 1/3.0, u.GPUHours, 1e-12, u.Group)
		assert.InDelta(t, 60, u.MeanUtil, 1e-12, u.Group)
		assert.InDelta(t, 0.3/3, u.EnergyKWh, 1e-12, u.Group) // 300 W for an hour, split three ways
		hours, kwh = hours+u.GPUHours, kwh+u.EnergyKWh
	}
	assert.InDelta(t, 1, hours, 1e-12)
	assert.InDelta(t, 0.3, kwh, 1e-12)
}

// A MIG GPU with a 3g and a 4g instance, each repeating the GPU's 280 W and reporting its
// graphics engine activity (no GPU_UTIL): the instances get 3/7 and 4/7 of the GPU's hour
// and energy, their utilisation from the engine activity; the GPU itself counts through
// them, so the host's energy is the GPU's once.
func TestMIGInstancesShareTheirGPU(t *testing.T) {
	devices := []telemetry.GPU{{UUID: "GPU-m"}, {UUID: "GPU-m", Instance: "1", InstanceProfile: "3g.40gb"},
		{UUID: "GPU-m", Instance: "2", InstanceProfile: "4g.40gb"}, {UUID: "GPU-w"}}
	shares := usage.Shares(devices)
	assert.Equal(t, map[string]float64{"GPU-m": 0, "GPU-m/1": 3 / 7.0, "GPU-m/2": 4 / 7.0, "GPU-w": 1}, shares)

	byDevice := usage.New(window(0, 3600), usage.DefaultGap)
	byHost := usage.New(window(0, 3600), usage.DefaultGap)
	add := func(key string, fields map[string][]telemetry.Series) {
		for _, r := range []*usage.Report{byDevice, byHost} {
			name := key
			if r == byHost {
				name = "host"
			}
			r.AddDevice(usage.Device{Key: key, Share: shares[key]}, fields, func(telemetry.Series) (string, bool) { return name, true })
		}
	}
	power := []telemetry.Series{{Points: every(0, 3600, 10, 280)}}
	add("GPU-m", map[string][]telemetry.Series{usage.PowerField: power})
	add("GPU-m/1", map[string][]telemetry.Series{usage.EngineField: {{Pod: "p1", Points: every(0, 3600, 10, 0.5)}}, usage.PowerField: power})
	add("GPU-m/2", map[string][]telemetry.Series{usage.EngineField: {{Points: every(0, 3600, 10, 0)}}, usage.PowerField: power})
	add("GPU-w", map[string][]telemetry.Series{usage.UtilField: {{Points: every(0, 3600, 10, 90)}}, usage.PowerField: {{Points: every(0, 3600, 10, 400)}}})

	got := byDevice.Usage()
	require.Len(t, got, 3, "the partitioned GPU counts through its instances")
	assert.Equal(t, "GPU-m/1", got[0].Group)
	assert.InDelta(t, 3/7.0, got[0].GPUHours, 1e-12)
	assert.InDelta(t, 50, got[0].MeanUtil, 1e-12, "engine activity 0.5 is 50 %")
	assert.InDelta(t, 0.28*3/7, got[0].EnergyKWh, 1e-12)
	assert.Equal(t, map[string]int{usage.SignalEngine: 1}, got[0].UtilSignals)
	assert.InDelta(t, 4/7.0, got[1].GPUHours, 1e-12)
	assert.InDelta(t, 0, got[1].MeanUtil, 1e-12)
	host := byHost.Usage()
	require.Len(t, host, 1)
	assert.InDelta(t, 2, host[0].GPUHours, 1e-12, "two physical GPUs, an hour each")
	assert.InDelta(t, 0.28+0.4, host[0].EnergyKWh, 1e-12, "each GPU's energy once")
	assert.Equal(t, map[string]int{usage.SignalEngine: 2, usage.SignalUtil: 1}, host[0].UtilSignals)
	assert.Equal(t, 3, host[0].Devices)
}

// A pod holding two GPUs for an hour gets two GPU-hours.
func TestAPodOnTwoGPUsGetsTwoGPUHours(t *testing.T) {
	r := usage.New(window(0, 3600), usage.DefaultGap)
	for _, gpu := range []string{"GPU-1", "GPU-2"} {
		r.Add(gpu, usage.UtilField, []telemetry.Series{{Pod: "trainer", Points: every(0, 3600, 30, 80)}}, byPod)
	}
	got := r.Usage()
	require.Len(t, got, 1)
	assert.InDelta(t, 2, got[0].GPUHours, 1e-12)
	assert.Equal(t, 2, got[0].Devices)
}

// A 5-minute outage of the pipeline (no sample of a device reporting every 10 s) adds no
// GPU time: the hour counts the 55 minutes reported.
func TestAnOutageIsNotUse(t *testing.T) {
	pts := append(every(0, 1800, 10, 50), every(2100, 3600, 10, 50)...)
	r := usage.New(window(0, 3600), usage.DefaultGap)
	r.Add("GPU-1", usage.UtilField, []telemetry.Series{{Points: pts}}, byNamespace)
	got := r.Usage()
	require.Len(t, got, 1)
	assert.InDelta(t, 3300/3600.0, got[0].GPUHours, 1e-12)
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

// Tallies of adjacent windows merge into the tally of both: sums, the utilisation
// histogram, samples (each in one window), the first sample and the end of the last.
func TestTalliesOfAdjacentWindowsMerge(t *testing.T) {
	var pts []telemetry.Point
	for i := range 120 {
		pts = append(pts, telemetry.Point{Time: at(float64(i * 30)), Value: float64(i % 50)})
	}
	fields := map[string][]telemetry.Series{
		usage.UtilField: {{Pod: "p", Points: pts}},
		usage.SMField:   {{Pod: "p", Points: every(0, 3600, 30, 0.25)}},
	}
	tally := func(w telemetry.TimeRange) *usage.Tally {
		r := usage.New(w, usage.DefaultGap)
		r.AddDevice(usage.Device{Key: "GPU-1", Share: 1}, fields, byPod)
		return r.Tallies()["p"]
	}
	whole := tally(window(0, 3600))
	merged := tally(window(0, 1234.5))
	merged.Merge(tally(window(1234.5, 3600)))
	assert.InDelta(t, whole.Seconds, merged.Seconds, 1e-9)
	assert.InDelta(t, whole.UtilWeighted, merged.UtilWeighted, 1e-6)
	assert.InDelta(t, whole.IdleSeconds, merged.IdleSeconds, 1e-9)
	for pct := range whole.UtilHistogram {
		assert.InDelta(t, whole.UtilHistogram[pct], merged.UtilHistogram[pct], 1e-9, pct)
	}
	assert.Equal(t, whole.Samples, merged.Samples, "the sample at the cut counts once")
	assert.Equal(t, int64(120), whole.Samples)
	assert.Equal(t, whole.First, merged.First)
	assert.Equal(t, whole.Until, merged.Until)
	assert.InDelta(t, 3600, whole.HeldSeconds, 1e-9)
	assert.InDelta(t, whole.HeldSeconds, merged.HeldSeconds, 1e-9)
	assert.InDelta(t, 0.25, whole.Profiling[usage.SMField].Mean(), 1e-12)
	assert.InDelta(t, 3600, whole.Profiling[usage.SMField].Seconds, 1e-9)

	// 0..49 twice, then 0..19: 0..19 three times and 20..49 twice, so 95 % of the 120
	// intervals (114) are at 46 or under (60 + 2 × 27), and 3 of 120 at 0 (idle).
	assert.Equal(t, 46.0, whole.UtilPercentile(0.95))
	assert.Equal(t, 49.0, whole.UtilPercentile(1))
	assert.InDelta(t, 3/120.0, whole.IdleSeconds/whole.UtilSeconds, 1e-12)
	assert.True(t, math.IsNaN((&usage.Tally{}).UtilPercentile(0.95)))
}

// A device no workload held, its SMs idle, is idle, by device as by pod; held for part of
// the time with no kernels, it is held with no kernels.
func TestAnUnheldDeviceWithNoKernelsIsIdle(t *testing.T) {
	class := func(holder string, group func(telemetry.Series) (string, bool)) map[string]string {
		fields := map[string][]telemetry.Series{
			usage.UtilField: {{Points: every(0, 1800, 30, 0)}, {Pod: holder, Points: every(1800, 3600, 30, 0)}},
			usage.SMField:   {{Points: every(0, 1800, 30, 0)}, {Pod: holder, Points: every(1800, 3600, 30, 0)}},
		}
		r := usage.New(window(0, 3600), usage.DefaultGap)
		r.AddDevice(usage.Device{Key: "GPU-1", Share: 1}, fields, group)
		out := map[string]string{}
		for _, u := range r.Usage() {
			out[u.Group] = u.Class
			assert.InDelta(t, 0, u.Profiling[usage.SMField].Mean, 0, u.Group)
		}
		return out
	}
	byDevice := func(telemetry.Series) (string, bool) { return "GPU-1", true }
	assert.Equal(t, map[string]string{"": usage.ClassIdle, "nb": usage.ClassHeldNoKernels}, class("nb", byPod))
	assert.Equal(t, map[string]string{"GPU-1": usage.ClassHeldNoKernels}, class("nb", byDevice))
	assert.Equal(t, map[string]string{"GPU-1": usage.ClassIdle}, class("", byDevice))
}
