// Package healthtest holds a fleet with health problems planted, for the tests of what
// finds them: the API's and the console's.
package healthtest

import (
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// TroubledFleet is two hours of four GPUs of host h1 scraped every 30 s from t0, with
// problems planted: GPU-idle under 5 % for the hour from minute 30 while pod
// team-a/notebook holds it, XID 79 on GPU-xid from minute 40 to 45, hardware thermal
// throttling on GPU-hot from minute 60 to 75. GPU-ok has none.
func TroubledFleet(t0 time.Time) telemetry.Batch {
	var gpus []telemetry.GPU
	for i, name := range []string{"GPU-idle", "GPU-xid", "GPU-hot", "GPU-ok"} {
		gpus = append(gpus, telemetry.GPU{UUID: name, Hostname: "h1", Index: i, ModelName: "H100"})
	}
	b := telemetry.Batch{ID: "troubled", GPUs: gpus}
	in := func(at time.Duration, from, to int) bool {
		return at >= time.Duration(from)*time.Minute && at < time.Duration(to)*time.Minute
	}
	for at := time.Duration(0); at < 2*time.Hour; at += 30 * time.Second {
		for _, g := range gpus {
			util, xid, reasons := 90.0, 0.0, 0.0
			var pod, ns string
			switch g.UUID {
			case "GPU-idle":
				util = 80
				if in(at, 30, 90) {
					util, pod, ns = 1, "notebook", "team-a"
				}
			case "GPU-xid":
				if in(at, 40, 45) {
					xid = 79
				}
			case "GPU-hot":
				if in(at, 60, 75) {
					reasons = 0x40 // hw_thermal_slowdown
				}
			}
			for _, s := range []struct {
				metric string
				value  float64
			}{{"DCGM_FI_DEV_GPU_UTIL", util}, {"DCGM_FI_DEV_XID_ERRORS", xid}, {"DCGM_FI_DEV_CLOCKS_EVENT_REASONS", reasons}} {
				b.Samples = append(b.Samples, telemetry.Sample{GPU: g.UUID, Metric: s.metric, Time: t0.Add(at), Value: s.value, Pod: pod, Namespace: ns})
			}
		}
	}
	return b
}
