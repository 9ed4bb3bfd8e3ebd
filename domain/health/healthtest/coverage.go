package healthtest

import (
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Coverage is two hours of seven H200s of host c1 scraped every 30 s from t0, each reporting
// utilisation, power, temperature, the GR engine and NVLink traffic — but GPU-nogr, which
// sends no GR engine; GPU-zerogr, whose GR engine reads 0 while it is busy; GPU-nolink,
// whose NVLink traffic reads 0 while its peers' does not; GPU-nopower, whose power reads 0;
// and GPU-idle, idle, whose GR engine reads 0 as it should.
func Coverage(t0 time.Time) telemetry.Batch {
	names := []string{"GPU-ok1", "GPU-ok2", "GPU-nogr", "GPU-zerogr", "GPU-nolink", "GPU-nopower", "GPU-idle"}
	var gpus []telemetry.GPU
	for i, n := range names {
		gpus = append(gpus, telemetry.GPU{UUID: n, Hostname: "c1", Index: i, ModelName: "NVIDIA H200"})
	}
	b := telemetry.Batch{ID: "coverage", GPUs: gpus}
	link := 0.0
	for at := time.Duration(0); at < 2*time.Hour; at += 30 * time.Second {
		link += 1e9
		for _, g := range gpus {
			util, gr, power, nvlink := 80.0, 0.8, 400.0, link
			switch g.UUID {
			case "GPU-zerogr":
				gr = 0
			case "GPU-nolink":
				nvlink = 0
			case "GPU-nopower":
				power = 0
			case "GPU-idle":
				util, gr, power = 0, 0, 60
			}
			add := func(metric string, v float64) {
				b.Samples = append(b.Samples, telemetry.Sample{GPU: g.UUID, Metric: metric, Time: t0.Add(at), Value: v})
			}
			add("DCGM_FI_DEV_GPU_UTIL", util)
			add("DCGM_FI_DEV_POWER_USAGE", power)
			add("DCGM_FI_DEV_GPU_TEMP", 30+power/10)
			add("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", nvlink)
			if g.UUID != "GPU-nogr" {
				add("DCGM_FI_PROF_GR_ENGINE_ACTIVE", gr)
			}
		}
	}
	return b
}
