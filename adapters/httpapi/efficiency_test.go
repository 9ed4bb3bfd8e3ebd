package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/httpapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health/healthtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func TestEfficiencyEqualsTheHandComputation(t *testing.T) {
	api := serveBatch(t, healthtest.Efficiency(t0))
	var report httpapi.EfficiencyReport
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/fleet/efficiency?"+twoHours("by", "pod"), &report).Code)
	byGroup := map[string]httpapi.Efficiency{}
	for _, e := range report.Data {
		byGroup[e.Group] = e
	}
	train := byGroup["team-a/train"]
	assert.Equal(t, "active", train.Class)
	assert.InDelta(t, 2.0, train.GPUHours, 1e-9, "held the whole two hours")
	for field, want := range map[string]float64{
		"DCGM_FI_PROF_SM_ACTIVE": 0.6, "DCGM_FI_PROF_SM_OCCUPANCY": 0.3, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": 0.25,
		"DCGM_FI_PROF_PIPE_FP16_ACTIVE": 0.1, "DCGM_FI_PROF_PIPE_FP32_ACTIVE": 0.05, "DCGM_FI_PROF_PIPE_FP64_ACTIVE": 0,
		"DCGM_FI_PROF_DRAM_ACTIVE": 0.4, "DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.7,
		"DCGM_FI_PROF_NVLINK_TX_BYTES": 112.5e9 / 300e9, // an A100 SXM's NVLink: 300 GB/s each way
		"DCGM_FI_PROF_PCIE_RX_BYTES":   16e9 / 32e9,     // PCIe Gen4 x16: 32 GB/s each way
	} {
		require.Contains(t, train.Fields, field)
		assert.InDelta(t, want, train.Fields[field].Share, 1e-9, field)
		assert.InDelta(t, 2.0, train.Fields[field].Hours, 1e-9, field)
	}
	assert.ElementsMatch(t, []string{"DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_NVLINK_RX_BYTES"}, train.NotReported)

	assert.Equal(t, "held_no_kernels", byGroup["team-b/notebook"].Class)
	assert.Equal(t, "memory_held_compute_idle", byGroup["team-b/cache"].Class)
	job := byGroup["team-c/job"]
	assert.Equal(t, "not_reported", job.Class, "no profiling field: not reported, never idle")
	assert.Empty(t, job.Fields)
	assert.Len(t, job.NotReported, 12)
	for _, pod := range []string{"a", "b"} {
		shared := byGroup["team-d/"+pod]
		assert.InDelta(t, 1.0, shared.GPUHours, 1e-9, "two pods time-slicing a GPU for two hours: an hour each")
		assert.InDelta(t, 0.5, shared.Fields["DCGM_FI_PROF_SM_ACTIVE"].Share, 1e-9)
		assert.Equal(t, "active", shared.Class)
	}

	get(t, api, "/api/v1/fleet/efficiency?"+twoHours("by", "namespace"), &report)
	for _, e := range report.Data {
		if e.Group == "team-b" {
			// By hand: 2 hours at 0.002 and 2 hours at 0.03.
			assert.InDelta(t, 0.016, e.Fields["DCGM_FI_PROF_SM_ACTIVE"].Share, 1e-9)
			assert.Equal(t, "memory_held_compute_idle", e.Class)
		}
	}
	// Unheld time with no kernels is idle, not held.
	idle := serveBatch(t, telemetry.Batch{ID: "unheld", GPUs: []telemetry.GPU{{UUID: "GPU-free", Hostname: "e3", ModelName: "NVIDIA L4"}},
		Samples: []telemetry.Sample{{GPU: "GPU-free", Metric: "DCGM_FI_PROF_GR_ENGINE_ACTIVE", Time: t0, Value: 0},
			{GPU: "GPU-free", Metric: "DCGM_FI_PROF_GR_ENGINE_ACTIVE", Time: t0.Add(time.Minute), Value: 0}}})
	get(t, idle, "/api/v1/fleet/efficiency?"+twoHours("by", "pod"), &report)
	require.Len(t, report.Data, 1)
	assert.Equal(t, "idle", report.Data[0].Class)
	get(t, idle, "/api/v1/fleet/efficiency?"+twoHours("by", "gpu"), &report)
	assert.Equal(t, "idle", report.Data[0].Class, "a device no pod held")
	get(t, api, "/api/v1/fleet/efficiency?"+twoHours("by", "gpu"), &report)
	classes := map[string]string{}
	for _, e := range report.Data {
		classes[e.Group] = e.Class
	}
	assert.Equal(t, "held_no_kernels", classes["GPU-notebook"], "by device, held by a pod with no kernels: %v", classes)
	badRequests(t, api, map[string]string{"/api/v1/fleet/efficiency?by=colour": "by"})
}
