package dcgmsim_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/dcgmsim"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// fleetOf is hosts hosts of gpus GPUs, each reporting utilisation and energy.
func fleetOf(hosts, gpus int) []telemetry.Reading {
	var out []telemetry.Reading
	for h := range hosts {
		for g := range gpus {
			gpu := telemetry.GPU{UUID: fmt.Sprintf("GPU-%d-%d", h, g), Hostname: fmt.Sprintf("node-%d", h), Index: g,
				ModelName: "NVIDIA H100 80GB HBM3", DriverVersion: "550.54.15"}
			for metric, v := range map[string]float64{"DCGM_FI_DEV_GPU_UTIL": 50, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": 1e9} {
				out = append(out, telemetry.Reading{GPU: gpu, Sample: telemetry.Sample{GPU: gpu.UUID, Metric: metric, Value: v}})
			}
		}
	}
	return out
}

func scrape(t *testing.T, f *dcgmsim.Fleet, host string) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(f.Handler(host))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	families := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			break
		}
		families[mf.GetName()] = &mf
	}
	return families
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestExpositionAsDCGMExporterWritesIt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := dcgmsim.New(fleetOf(2, 4), dcgmsim.Options{MIG: 3, Pods: true, Health: true, Now: func() time.Time { return now }})
	require.Equal(t, []string{"node-0", "node-1"}, f.Hosts())
	assert.Equal(t, (3+3)*2+4*3+3*2, f.Series("node-0"),
		"the first GPU is 3 MIG instances; each GPU has XID, throttle and ECC series, each whole one SM and engine activity")

	families := scrape(t, f, "node-0")
	util := families["DCGM_FI_DEV_GPU_UTIL"]
	require.NotNil(t, util)
	assert.Equal(t, dto.MetricType_GAUGE, util.GetType())
	assert.NotEmpty(t, util.GetHelp())
	assert.Equal(t, dto.MetricType_COUNTER, families["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"].GetType())
	instances, pods := 0, 0
	for _, m := range util.GetMetric() {
		l := labels(m)
		for _, name := range []string{"gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION"} {
			assert.NotEmpty(t, l[name], name)
		}
		assert.Empty(t, l["GPU_I_ID"], "MIG instances report no GPU_UTIL")
		if l["pod"] != "" {
			pods++
			assert.NotEmpty(t, l["namespace"])
		}
		assert.GreaterOrEqual(t, m.GetGauge().GetValue(), 0.0)
		assert.LessOrEqual(t, m.GetGauge().GetValue(), 100.0, "a percentage stays one")
	}
	assert.Equal(t, 1, pods, "every other GPU")
	for _, m := range families["DCGM_FI_PROF_GR_ENGINE_ACTIVE"].GetMetric() {
		l := labels(m)
		if l["GPU_I_ID"] == "" {
			continue // a whole GPU's
		}
		instances++
		assert.Equal(t, "GPU-0-0", l["UUID"])
		assert.NotEmpty(t, l["GPU_I_PROFILE"])
		assert.NotEmpty(t, l["pod"], "every MIG instance held")
		assert.LessOrEqual(t, m.GetGauge().GetValue(), 1.0, "a ratio")
	}
	assert.Equal(t, 3, instances)
	for _, m := range families["DCGM_FI_DEV_XID_ERRORS"].GetMetric() {
		assert.Equal(t, "0", labels(m)["err_code"])
		assert.Equal(t, "No Error", labels(m)["err_msg"])
	}
	assert.Len(t, families["DCGM_FI_DEV_XID_ERRORS"].GetMetric(), 4, "one a GPU, the partitioned one's too")
}

// What real fleets do, on a clock of the hour: a time-sliced GPU reported once per pod, a
// pod holding two GPUs, a GPU held idle, XID 79 and thermal throttling on another, a line
// that is not a number.
func TestRealFleetQuirks(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 12, 0, 0, time.UTC)
	f := dcgmsim.New(fleetOf(5, 2), dcgmsim.Options{MIG: 2, Pods: true, TimeSliced: 3, BadLine: true, Health: true, Now: func() time.Time { return now }})
	util := func(host string) map[string][]string { // UUID → its pods
		out := map[string][]string{}
		for _, m := range scrape(t, f, host)["DCGM_FI_DEV_GPU_UTIL"].GetMetric() {
			out[labels(m)["UUID"]] = append(out[labels(m)["UUID"]], labels(m)["pod"])
		}
		return out
	}
	assert.Equal(t, []string{"shared-infer-0", "shared-infer-1", "shared-infer-2"}, util("node-1")["GPU-1-0"], "time-sliced")
	held := util("node-2")
	assert.Equal(t, []string{"ddp-trainer-0"}, held["GPU-2-0"])
	assert.Equal(t, []string{"ddp-trainer-0"}, held["GPU-2-1"], "one pod, two GPUs")
	for _, m := range scrape(t, f, "node-3")["DCGM_FI_DEV_GPU_UTIL"].GetMetric() {
		if labels(m)["UUID"] == "GPU-3-0" {
			assert.Equal(t, "notebook-idle-0", labels(m)["pod"])
			assert.LessOrEqual(t, m.GetGauge().GetValue(), 1.0, "held idle")
		}
	}
	value := func(field string) (float64, map[string]string) {
		for _, m := range scrape(t, f, "node-4")[field].GetMetric() {
			if labels(m)["UUID"] == "GPU-4-0" {
				return m.GetGauge().GetValue(), labels(m)
			}
		}
		t.Fatalf("no %s of GPU-4-0", field)
		return 0, nil
	}
	xid, l := value("DCGM_FI_DEV_XID_ERRORS")
	assert.Equal(t, 79.0, xid)
	assert.Equal(t, "79", l["err_code"])
	now = now.Add(13 * time.Minute) // 00:25
	throttle, _ := value("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS")
	assert.Equal(t, 64.0, throttle, "hardware thermal slowdown")
	xid, _ = value("DCGM_FI_DEV_XID_ERRORS")
	assert.Equal(t, 0.0, xid)
	counts := map[string]float64{} // its XID count, a series a code
	for _, m := range scrape(t, f, "node-4")["DCGM_EXP_XID_ERRORS_COUNT"].GetMetric() {
		assert.Equal(t, "GPU-4-0", labels(m)["UUID"])
		assert.Equal(t, "300000", labels(m)["window_size_in_ms"])
		counts[labels(m)["xid"]] = m.GetGauge().GetValue()
	}
	assert.Equal(t, map[string]float64{"13": 2, "79": 0}, counts, "at 00:25")

	srv := httptest.NewServer(f.Handler("node-0"))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(body), "} ERROR - FAILED TO CONVERT TO STRING\n")
}

func TestValuesMoveAndCountersGrow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := dcgmsim.New(fleetOf(1, 2), dcgmsim.Options{Now: func() time.Time { return now }})
	before := scrape(t, f, "node-0")
	now = now.Add(time.Minute)
	after := scrape(t, f, "node-0")
	moved := false
	for i, m := range after["DCGM_FI_DEV_GPU_UTIL"].GetMetric() {
		moved = moved || m.GetGauge().GetValue() != before["DCGM_FI_DEV_GPU_UTIL"].GetMetric()[i].GetGauge().GetValue()
	}
	assert.True(t, moved, "gauges move over a minute")
	for i, m := range after["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"].GetMetric() {
		assert.Greater(t, m.GetCounter().GetValue(), before["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"].GetMetric()[i].GetCounter().GetValue())
	}
}

func TestHostsCopiesTheFleet(t *testing.T) {
	f := dcgmsim.New(fleetOf(3, 2), dcgmsim.Options{Hosts: 8, Health: true})
	require.Len(t, f.Hosts(), 8)
	assert.Equal(t, []string{"node-0", "node-1", "node-2", "node-0-1", "node-1-1", "node-2-1", "node-0-2", "node-1-2"}, f.Hosts())
	uuids := map[string]string{}
	for _, h := range f.Hosts() {
		want := 4 + 3*2 + 2*2 // two fields of two GPUs, their XID, throttle and ECC series, their SM and engine activity
		switch h {
		case "node-1-1":
			want += 2 // the fifth host's failing GPU: its counts of two XIDs
		case "node-2-1":
			want -= 2 * 2 // the sixth host sends no profiling field
		}
		assert.Equal(t, want, f.Series(h), h)
		for _, m := range scrape(t, f, h)["DCGM_FI_DEV_GPU_UTIL"].GetMetric() {
			l := labels(m)
			assert.Equal(t, h, l["Hostname"])
			prev, seen := uuids[l["UUID"]]
			assert.False(t, seen, "UUID %s on %s and %s", l["UUID"], prev, h)
			uuids[l["UUID"]] = h
			assert.True(t, model.LabelValue(l["UUID"]).IsValid())
		}
	}
	assert.Len(t, uuids, 16)
	assert.Len(t, dcgmsim.New(fleetOf(3, 2), dcgmsim.Options{Hosts: 2}).Hosts(), 3, "never fewer hosts than the readings'")
}

// The problems planted for the health views, on the clock of the hour.
func TestPlantedHealthProblems(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 12, 0, 0, time.UTC)
	f := dcgmsim.New(fleetOf(8, 2), dcgmsim.Options{Pods: true, Health: true, Now: func() time.Time { return now }})
	value := func(host, uuid, field string) (float64, bool) {
		for _, m := range scrape(t, f, host)[field].GetMetric() {
			if labels(m)["UUID"] == uuid {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue(), true
			}
		}
		return 0, false
	}
	xid, _ := value("node-6", "GPU-6-0", "DCGM_FI_DEV_XID_ERRORS")
	assert.Equal(t, 163.0, xid)
	sbe, _ := value("node-7", "GPU-7-0", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL")
	other, _ := value("node-7", "GPU-7-1", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL")
	assert.Zero(t, other, "its peers count none")
	sm, ok := value("node-3", "GPU-3-0", "DCGM_FI_PROF_SM_ACTIVE")
	assert.True(t, ok)
	assert.Less(t, sm, 0.01, "held, no kernels")
	busy, _ := value("node-3", "GPU-3-1", "DCGM_FI_PROF_SM_ACTIVE")
	assert.InDelta(t, 0.85*0.5, busy, 0.1*0.85*0.5+0.005, "as busy as its utilisation (50 %) says")
	// A GPU whose utilisation reads 0 runs no kernels: its SMs read 0–2 %.
	readings := fleetOf(2, 2)
	for i, r := range readings {
		if r.GPU.UUID == "GPU-0-0" && r.Sample.Metric == "DCGM_FI_DEV_GPU_UTIL" {
			readings[i].Sample.Value = 0
		}
	}
	clock := now
	idle := dcgmsim.New(readings, dcgmsim.Options{Health: true, Now: func() time.Time { return clock }})
	for range 10 {
		found := false
		for _, m := range scrape(t, idle, "node-0")["DCGM_FI_PROF_SM_ACTIVE"].GetMetric() {
			if labels(m)["UUID"] == "GPU-0-0" {
				found = true
				assert.LessOrEqual(t, m.GetGauge().GetValue(), 0.02)
			}
		}
		require.True(t, found)
		clock = clock.Add(17 * time.Second)
	}
	for _, field := range []string{"DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"} {
		_, ok := value("node-5", "GPU-5-0", field)
		assert.False(t, ok, "the sixth host sends no %s", field)
	}

	now = now.Add(10 * time.Minute) // 00:22
	xid, _ = value("node-6", "GPU-6-0", "DCGM_FI_DEV_XID_ERRORS")
	assert.Equal(t, 162.0, xid, "cancelling the 163")
	later, _ := value("node-7", "GPU-7-0", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL")
	assert.Equal(t, 17700.0*600, later-sbe, "17,700 a second")
	now = now.Add(5 * time.Minute)
	xid, _ = value("node-6", "GPU-6-0", "DCGM_FI_DEV_XID_ERRORS")
	assert.Zero(t, xid)
}

// Ratios stay within 0–1 and percentages within 0–100 however they swing, and both move.
func TestValuesStayInTheirRange(t *testing.T) {
	gpu := telemetry.GPU{UUID: "GPU-r", Hostname: "node-r", ModelName: "NVIDIA H100 80GB HBM3"}
	var readings []telemetry.Reading
	for metric, v := range map[string]float64{"DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.99, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": 0.01,
		"DCGM_FI_DEV_GPU_UTIL": 99} {
		readings = append(readings, telemetry.Reading{GPU: gpu, Sample: telemetry.Sample{GPU: gpu.UUID, Metric: metric, Value: v}})
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := dcgmsim.New(readings, dcgmsim.Options{Now: func() time.Time { return now }})
	seen := map[string]map[float64]bool{}
	for range 60 {
		for name, mf := range scrape(t, f, "node-r") {
			v := mf.GetMetric()[0].GetGauge().GetValue()
			top := 1.0
			if name == "DCGM_FI_DEV_GPU_UTIL" {
				top = 100
			}
			assert.True(t, v >= 0 && v <= top, "%s = %v", name, v)
			if seen[name] == nil {
				seen[name] = map[float64]bool{}
			}
			seen[name][v] = true
		}
		now = now.Add(5 * time.Second)
	}
	for name, values := range seen {
		if name == "DCGM_FI_DEV_XID_ERRORS" || name == "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS" {
			continue // 0 but where planted
		}
		assert.Greater(t, len(values), 3, "%s moves", name)
	}
}
