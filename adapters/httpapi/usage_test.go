package httpapi_test

import (
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/httpapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// newUsageFleet serves a day from t0 (and the minutes around it) of three GPUs, each
// reporting utilisation, power and memory:
//   - A (h1) every minute, held by team-a/train for the first 12 hours (90 %, 400 W,
//     60,000 MiB), then by no pod (0 %, 60 W, 0 MiB);
//   - B (h1) every minute, held by team-a/eval (50 %, 250 W, 20,000 MiB), silent from
//     10:00 to 10:29 after t0;
//   - C (h2) every two minutes from a minute before t0, held by team-b/serve (30 %, 200 W,
//     30,000 MiB), and once more a minute after the day.
func newUsageFleet(t *testing.T) http.Handler {
	t.Helper()
	return serveBatch(t, usageFleetBatch())
}

func usageFleetBatch() telemetry.Batch {
	gpus := []telemetry.GPU{
		{UUID: "GPU-A", Hostname: "h1", Index: 0, ModelName: "H100"},
		{UUID: "GPU-B", Hostname: "h1", Index: 1, ModelName: "H100"},
		{UUID: "GPU-C", Hostname: "h2", Index: 0, ModelName: "A100"},
	}
	b := telemetry.Batch{ID: "usage", GPUs: gpus}
	add := func(gpu string, at time.Time, ns, pod string, util, power, memory float64) {
		for metric, v := range map[string]float64{"DCGM_FI_DEV_GPU_UTIL": util, "DCGM_FI_DEV_POWER_USAGE": power, "DCGM_FI_DEV_FB_USED": memory} {
			b.Samples = append(b.Samples, telemetry.Sample{GPU: gpu, Metric: metric, Time: at, Value: v, Namespace: ns, Pod: pod})
		}
	}
	for m := range 24 * 60 {
		at := t0.Add(time.Duration(m) * time.Minute)
		if m < 12*60 {
			add("GPU-A", at, "team-a", "train", 90, 400, 60000)
		} else {
			add("GPU-A", at, "", "", 0, 60, 0)
		}
		if m < 10*60 || m >= 10*60+30 {
			add("GPU-B", at, "team-a", "eval", 50, 250, 20000)
		}
	}
	for m := -1; m <= 24*60+1; m += 2 {
		add("GPU-C", t0.Add(time.Duration(m)*time.Minute), "team-b", "serve", 30, 200, 30000)
	}
	return b
}

func usageReport(t *testing.T, api http.Handler, params ...string) map[string]httpapi.Usage {
	t.Helper()
	var out httpapi.UsageReport
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/fleet/usage?"+over(24*time.Hour, params...), &out).Code, params)
	assert.Equal(t, len(out.Data), out.Count)
	assert.Equal(t, "5m0s", out.Gap)
	m := map[string]httpapi.Usage{}
	for _, u := range out.Data {
		m[u.Group] = u
	}
	return m
}

func TestUsageByNamespaceOverADay(t *testing.T) {
	api := newUsageFleet(t)
	got := usageReport(t, api)
	require.Len(t, got, 3, "team-a, team-b and the samples of no namespace")

	// By hand: a sample stands for the minute to the next one, so A's first 720 count 12 h
	// and B's every minute but the 30 it was silent: the one before its silence stands for
	// one interval (a minute), not 31, since the silence is more than twice the interval.
	hoursB := 24 - 30.0/60
	a := got["team-a"]
	assert.Equal(t, 2, a.Devices)
	assert.InDelta(t, 12+hoursB, a.GPUHours, 1e-9)
	require.NotNil(t, a.MeanUtilization)
	assert.InDelta(t, (90*12+50*hoursB)/(12+hoursB), *a.MeanUtilization, 1e-9)
	assert.InDelta(t, (400*12+250*hoursB)/1000, a.EnergyKWh, 1e-9)
	require.NotNil(t, a.PeakMemoryMiB)
	assert.Equal(t, 60000.0, *a.PeakMemoryMiB)
	assert.EqualValues(t, 720+24*60-30, a.Samples)

	// C's sample a minute before the day stands for the day's first minute; the one at its
	// end for nothing, and the one after is not in it: 24 h exactly.
	c := got["team-b"]
	assert.InDelta(t, 24, c.GPUHours, 1e-9)
	assert.InDelta(t, 200*24/1000.0, c.EnergyKWh, 1e-9)
	assert.InDelta(t, 30, *c.MeanUtilization, 1e-9)

	none := got[""]
	assert.Equal(t, 1, none.Devices)
	assert.InDelta(t, 12, none.GPUHours, 1e-9)
	assert.InDelta(t, 60*12/1000.0, none.EnergyKWh, 1e-9)
	assert.Equal(t, 0.0, *none.MeanUtilization)

	// Two halves of the day add up to the day.
	half := t0.Add(12 * time.Hour).Format(time.RFC3339)
	first, second := usageReport(t, api, "end_time", half), usageReport(t, api, "start_time", half)
	assert.InDelta(t, a.GPUHours, first["team-a"].GPUHours+second["team-a"].GPUHours, 1e-9)
	assert.InDelta(t, a.EnergyKWh, first["team-a"].EnergyKWh+second["team-a"].EnergyKWh, 1e-9)
}

func TestUsageOfOneNamespaceByPodAndByHost(t *testing.T) {
	api := newUsageFleet(t)
	pods := usageReport(t, api, "by", "pod", "namespace", "team-a")
	require.Len(t, pods, 2)
	assert.InDelta(t, 12, pods["team-a/train"].GPUHours, 1e-9)
	assert.InDelta(t, 24-30.0/60, pods["team-a/eval"].GPUHours, 1e-9)
	assert.Equal(t, 20000.0, *pods["team-a/eval"].PeakMemoryMiB)

	hosts := usageReport(t, api, "by", "host")
	require.Len(t, hosts, 2)
	assert.Equal(t, 2, hosts["h1"].Devices)
	assert.InDelta(t, 24+24-30.0/60, hosts["h1"].GPUHours, 1e-9)
	assert.InDelta(t, 24, hosts["h2"].GPUHours, 1e-9)

	models := usageReport(t, api, "by", "model", "hostname", "h2")
	require.Len(t, models, 1)
	assert.Contains(t, models, "A100")
}

func TestUsageAsCSV(t *testing.T) {
	api := newUsageFleet(t)
	want := usageReport(t, api)
	for _, target := range []string{"/api/v1/fleet/usage?format=csv&" + over(24*time.Hour), "/api/v1/fleet/usage?" + over(24*time.Hour)} {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Accept", "text/csv")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, target)
		assert.Equal(t, "text/csv; charset=utf-8", rec.Header().Get("Content-Type"))
		rows, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 1+len(want))
		assert.Equal(t, []string{"group", "devices", "gpu_hours", "mean_utilization", "energy_kwh", "peak_memory_mib", "samples", "util_signals",
			"efficiency_class", "gr_engine_active", "sm_active", "sm_occupancy", "tensor_active", "fp16_active", "fp32_active", "fp64_active",
			"dram_active", "pcie_tx_share", "pcie_rx_share", "nvlink_tx_share", "nvlink_rx_share"}, rows[0])
		for _, row := range rows[1:] {
			u, ok := want[row[0]]
			require.True(t, ok, row)
			hours, err := strconv.ParseFloat(row[2], 64)
			require.NoError(t, err)
			assert.Equal(t, u.GPUHours, hours, "CSV keeps every digit")
			assert.Equal(t, strconv.Itoa(u.Devices), row[1])
			assert.Equal(t, strconv.FormatInt(u.Samples, 10), row[6])
			assert.Equal(t, u.EfficiencyClass, row[8])
			assert.NotEmpty(t, row[8])
		}
	}
}

func TestUsageBadRequests(t *testing.T) {
	badRequests(t, newUsageFleet(t), map[string]string{
		"/api/v1/fleet/usage?by=team":     "by",
		"/api/v1/fleet/usage?gap=0s":      "gap",
		"/api/v1/fleet/usage?gap=48h":     "gap",
		"/api/v1/fleet/usage?format=xlsx": "format",
		"/api/v1/fleet/usage?start_time=2025-07-19T00:00:00Z&end_time=2025-07-18T00:00:00Z": "end_time",
	})
}
