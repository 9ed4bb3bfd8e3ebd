package health_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health/healthtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

var t0 = time.Date(2025, 7, 18, 20, 0, 0, 0, time.UTC)

// measureAll measures every device of a batch as the query service does: a series a field.
func measureAll(b telemetry.Batch) []health.DeviceSignals {
	series := map[string]map[string]*telemetry.Series{}
	for _, s := range b.Samples {
		if series[s.GPU] == nil {
			series[s.GPU] = map[string]*telemetry.Series{}
		}
		sr := series[s.GPU][s.Metric]
		if sr == nil {
			sr = &telemetry.Series{GPU: s.GPU, Metric: s.Metric}
			series[s.GPU][s.Metric] = sr
		}
		sr.Points = append(sr.Points, telemetry.Point{Time: s.Time.UnixMicro(), Value: s.Value})
	}
	var out []health.DeviceSignals
	for _, g := range b.GPUs {
		fields := map[string][]telemetry.Series{}
		for metric, s := range series[g.UUID] {
			fields[metric] = []telemetry.Series{*s}
		}
		out = append(out, health.Measure(g, fields))
	}
	return out
}

func TestTheGPUWhoseECCErrorsClimbRanksFirst(t *testing.T) {
	out := health.Outliers(measureAll(healthtest.OddOneOut(t0, true)), health.PeerGroups(), health.DefaultOutlierScore)
	require.NotEmpty(t, out)
	first := out[0]
	assert.Equal(t, healthtest.OddGPU, first.GPU.UUID)
	assert.Equal(t, health.SignalSBE, first.Signal)
	// By hand: 17,700 errors a second on top of none (its peers' median); the peers' median
	// absolute deviation is 0, so the signal's floor, 0.001 errors a second, is the scale.
	assert.InDelta(t, healthtest.OddSBERate, first.Value, 1e-6)
	assert.Zero(t, first.Median)
	assert.InDelta(t, healthtest.OddSBERate/0.001, first.Score, 1e-3)
	assert.Contains(t, []string{"model", "host"}, first.Group)
	for _, o := range out[1:] {
		assert.Less(t, o.Score, first.Score)
	}
	t.Logf("%d outliers; the first %s %s %.0f, score %.3g against %d peers by %s", len(out), first.GPU.UUID, first.Signal, first.Value, first.Score, first.Peers, first.Group)
}

func TestAHealthyFleetHasNoOutliers(t *testing.T) {
	devices := measureAll(healthtest.OddOneOut(t0, false))
	out := health.Outliers(devices, health.PeerGroups(), health.DefaultOutlierScore)
	assert.Empty(t, out, "noise is not a fault")
	// The noise is there: errors now and then, temperatures off their peers' line.
	counted := map[string]int{}
	for _, d := range devices {
		for signal, v := range d.Values {
			if v != 0 {
				counted[signal]++
			}
		}
	}
	assert.Greater(t, counted[health.SignalPCIeReplay], 5, "%v", counted)
	assert.Greater(t, counted[health.SignalSBE], 5, "%v", counted)
	assert.Equal(t, len(devices), counted[health.SignalTempAtPower], "%v", counted)
}

func TestScoresByHand(t *testing.T) {
	dev := func(uuid, host string, v float64) health.DeviceSignals {
		return health.DeviceSignals{GPU: telemetry.GPU{UUID: uuid, Hostname: host, ModelName: "H100"},
			Values: map[string]float64{health.SignalThrottle: v}, Power: math.NaN(), Temp: math.NaN()}
	}
	devices := []health.DeviceSignals{dev("a", "h1", 0.0), dev("b", "h1", 0.1), dev("c", "h1", 0.2), dev("d", "h1", 0.3), dev("e", "h1", 0.9)}
	out := health.Outliers(devices, health.PeerGroups(), 0)
	// Median 0.2; deviations 0.2, 0.1, 0, 0.1, 0.7 → MAD 0.1, scale 0.14826; e: 0.7 / 0.14826.
	require.Len(t, out, 2, "d and e: above the median")
	assert.Equal(t, "e", out[0].GPU.UUID)
	assert.InDelta(t, 0.7/0.14826, out[0].Score, 1e-9)
	assert.InDelta(t, 0.2, out[0].Median, 1e-12)
	assert.Equal(t, 5, out[0].Peers)
	assert.Empty(t, health.Outliers(devices[:3], health.PeerGroups(), 0), "fewer than MinPeers")
}

func TestSignalsOfADevice(t *testing.T) {
	at := func(i int) int64 { return t0.Add(time.Duration(i) * time.Minute).UnixMicro() }
	series := func(values ...float64) []telemetry.Series {
		var s telemetry.Series
		for i, v := range values {
			s.Points = append(s.Points, telemetry.Point{Time: at(i), Value: v})
		}
		return []telemetry.Series{s}
	}
	d := health.Measure(telemetry.GPU{UUID: "g"}, map[string][]telemetry.Series{
		"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL":           series(10, 70, 5, 65), // a reset: 60 + 5 + 60 in 3 minutes
		"DCGM_FI_DEV_XID_ERRORS":                  series(0, 13, 13, 0, 79, 48),
		"DCGM_FI_DEV_CLOCKS_EVENT_REASONS":        series(0x40, 0x4, 0x1, 0x88, 0), // hardware for 2 of 4 minutes
		"DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": series(1, 2),
		"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS":   series(0, 3),
	})
	assert.InDelta(t, 125.0/180, d.Values[health.SignalSBE], 1e-12)
	assert.Equal(t, 3.0, d.Values[health.SignalXID])
	assert.Equal(t, 0.5, d.Values[health.SignalThrottle])
	assert.Equal(t, 4.0, d.Values[health.SignalRemappedRows])
	_, ok := d.Values[health.SignalPCIeReplay]
	assert.False(t, ok, "a field not reported is no signal, not a zero")
}

// A GPU's temperature at its power is ranked among 16 GPUs or more: eight GPUs of a host
// differ by their slots' airflow more than their median deviation says.
func TestTemperatureNeedsManyPeers(t *testing.T) {
	fleet := func(n int) []health.DeviceSignals {
		var out []health.DeviceSignals
		for i := range n {
			power := 200 + 20*float64(i%5)
			temp := 30 + 0.1*power + float64(i%3) - 1 // within a degree of the line
			if i == 0 {
				temp += 20 // the hot one
			}
			out = append(out, health.DeviceSignals{GPU: telemetry.GPU{UUID: fmt.Sprint("GPU-", i), Hostname: fmt.Sprint("h", i/8), ModelName: "H100"},
				Values: map[string]float64{}, Power: power, Temp: temp})
		}
		return out
	}
	assert.Empty(t, health.Outliers(fleet(8), health.PeerGroups(), health.DefaultOutlierScore), "one host of eight")
	out := health.Outliers(fleet(24), health.PeerGroups(), health.DefaultOutlierScore)
	require.Len(t, out, 1)
	assert.Equal(t, "GPU-0", out[0].GPU.UUID)
	assert.Equal(t, health.SignalTempAtPower, out[0].Signal)
	assert.Equal(t, "model", out[0].Group, "its host's 8 are too few")
}
