package healthtest

import (
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Efficiency is two hours of five GPUs scraped every 30 s from t0, each held by a pod
// throughout, with profiling values planted: team-a/train on an A100 SXM (SM active 0.6,
// occupancy 0.3, tensor 0.25, FP16 0.1, FP32 0.05, FP64 0, DRAM 0.4, graphics engine 0.7,
// NVLink sending 112.5 GB/s, PCIe receiving 16 GB/s, 60,000 MiB of memory);
// team-b/notebook on an A100 with no kernels (SM active 0.002, 20,000 MiB); team-b/cache on
// an A100 holding 40,000 MiB for SM active 0.03; team-c/job on an A100 whose node sends no
// profiling field; and team-d/a and team-d/b time-slicing an L40S (SM active 0.5).
func Efficiency(t0 time.Time) telemetry.Batch {
	a100, l40s := "NVIDIA A100-SXM4-80GB", "NVIDIA L40S"
	gpus := []telemetry.GPU{
		{UUID: "GPU-train", Hostname: "e1", Index: 0, ModelName: a100}, {UUID: "GPU-notebook", Hostname: "e1", Index: 1, ModelName: a100},
		{UUID: "GPU-cache", Hostname: "e1", Index: 2, ModelName: a100}, {UUID: "GPU-nodcp", Hostname: "e1", Index: 3, ModelName: a100},
		{UUID: "GPU-shared", Hostname: "e2", Index: 0, ModelName: l40s},
	}
	type holding struct {
		gpu, namespace string
		pods           []string
		fields         map[string]float64
	}
	holdings := []holding{
		{"GPU-train", "team-a", []string{"train"}, map[string]float64{"DCGM_FI_PROF_SM_ACTIVE": 0.6, "DCGM_FI_PROF_SM_OCCUPANCY": 0.3,
			"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": 0.25, "DCGM_FI_PROF_PIPE_FP16_ACTIVE": 0.1, "DCGM_FI_PROF_PIPE_FP32_ACTIVE": 0.05,
			"DCGM_FI_PROF_PIPE_FP64_ACTIVE": 0, "DCGM_FI_PROF_DRAM_ACTIVE": 0.4, "DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.7,
			"DCGM_FI_PROF_NVLINK_TX_BYTES": 112.5e9, "DCGM_FI_PROF_PCIE_RX_BYTES": 16e9, "DCGM_FI_DEV_FB_USED": 60000, "DCGM_FI_DEV_GPU_UTIL": 90}},
		{"GPU-notebook", "team-b", []string{"notebook"}, map[string]float64{"DCGM_FI_PROF_SM_ACTIVE": 0.002, "DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.003,
			"DCGM_FI_DEV_FB_USED": 20000, "DCGM_FI_DEV_GPU_UTIL": 0}},
		{"GPU-cache", "team-b", []string{"cache"}, map[string]float64{"DCGM_FI_PROF_SM_ACTIVE": 0.03, "DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.04,
			"DCGM_FI_DEV_FB_USED": 40000, "DCGM_FI_DEV_GPU_UTIL": 4}},
		{"GPU-nodcp", "team-c", []string{"job"}, map[string]float64{"DCGM_FI_DEV_FB_USED": 30000, "DCGM_FI_DEV_GPU_UTIL": 80}},
		{"GPU-shared", "team-d", []string{"a", "b"}, map[string]float64{"DCGM_FI_PROF_SM_ACTIVE": 0.5, "DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.6,
			"DCGM_FI_DEV_FB_USED": 10000, "DCGM_FI_DEV_GPU_UTIL": 70}},
	}
	b := telemetry.Batch{ID: "efficiency", GPUs: gpus}
	for at := time.Duration(0); at < 2*time.Hour; at += 30 * time.Second {
		for _, h := range holdings {
			for _, pod := range h.pods {
				for metric, v := range h.fields {
					b.Samples = append(b.Samples, telemetry.Sample{GPU: h.gpu, Metric: metric, Time: t0.Add(at), Value: v,
						Namespace: h.namespace, Pod: pod})
				}
			}
		}
	}
	return b
}
