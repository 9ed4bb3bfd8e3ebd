package httpapi

import (
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// GPU is a GPU as the API shows it.
type GPU struct {
	UUID          string `json:"uuid" example:"GPU-5fd4f087-86f3-7a43-b711-4771313afc50"`
	Hostname      string `json:"hostname" example:"mtv5-dgx1-hgpu-031"`
	GPUIndex      int    `json:"gpu_index" example:"0"`
	Device        string `json:"device" example:"nvidia0"`
	ModelName     string `json:"model_name" example:"NVIDIA H100 80GB HBM3"`
	DriverVersion string `json:"driver_version" example:"535.129.03"`
}

func toGPU(g telemetry.GPU) GPU {
	return GPU{UUID: g.UUID, Hostname: g.Hostname, GPUIndex: g.Index, Device: g.Device,
		ModelName: g.ModelName, DriverVersion: g.DriverVersion}
}

// GPUList is the answer to GET /api/v1/gpus.
type GPUList struct {
	Data  []GPU `json:"data"`
	Count int   `json:"count" example:"247"`
}

// Sample is one telemetry reading.
type Sample struct {
	Timestamp time.Time `json:"timestamp" example:"2025-07-18T20:42:34Z"`
	Metric    string    `json:"metric" example:"DCGM_FI_DEV_GPU_UTIL"`
	Value     float64   `json:"value" example:"87"`
	Container string    `json:"container,omitempty"`
	Pod       string    `json:"pod,omitempty"`
	Namespace string    `json:"namespace,omitempty"`
}

func toSample(s telemetry.Sample) Sample {
	return Sample{Timestamp: s.Time, Metric: s.Metric, Value: s.Value,
		Container: s.Container, Pod: s.Pod, Namespace: s.Namespace}
}

// TelemetryPage is the answer to GET /api/v1/gpus/{uuid}/telemetry: one page of samples,
// ordered by time.
type TelemetryPage struct {
	UUID   string   `json:"uuid" example:"GPU-5fd4f087-86f3-7a43-b711-4771313afc50"`
	Data   []Sample `json:"data"`
	Count  int      `json:"count" example:"100"`
	Limit  int      `json:"limit" example:"100"`
	Offset int      `json:"offset" example:"0"`
}

// Stats is the answer to GET /api/v1/stats.
type Stats struct {
	TotalRecords int64 `json:"total_records" example:"2470"`
	UniqueGPUs   int64 `json:"unique_gpus" example:"247"`
	UniqueHosts  int64 `json:"unique_hosts" example:"31"`
}

// Status is the answer of the probes.
type Status struct {
	Status string `json:"status" example:"ok"`
	Reason string `json:"reason,omitempty"`
}

// ErrorBody is every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong: code is one of invalid_argument, not_found,
// unavailable, internal.
type ErrorDetail struct {
	Code    string `json:"code" example:"invalid_argument"`
	Message string `json:"message" example:"start_time: \"yesterday\" is not an RFC 3339 time"`
}
