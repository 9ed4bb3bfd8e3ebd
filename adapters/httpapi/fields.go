package httpapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// fleetFields godoc
//
//	@Summary		Which fields each GPU really reports
//	@Description	Over [start_time, end_time] (default: the day before now), for each kind of device — a model's whole GPUs, or its MIG instances of one profile — how many report each field and read it other than 0; and for each device, the fields it reports (first and last sample in the window — the first to the 5-minute bucket where the downsampled tier answers — and how many) and its gaps: not_reported (most of its kind report the field, it does not: the GR engine missing on some nodes), always_zero (power, temperature, clocks, free memory or energy reading 0 throughout: a broken reading), zero_while_busy (the graphics engine, SM activity, SM occupancy or DRAM activity reading 0 throughout while the GPU's utilisation averages 5 % or more, as after an Xid 31), zero_unlike_peers (NVLink or PCIe traffic reading 0 throughout while most of its kind's carry some). A gap is a field to read as "not reported here", never as an idle or healthy GPU. Devices by host and index.
//	@Tags			fleet
//	@Produce		json
//	@Param			hostname	query		string	false	"only the GPUs of this host"
//	@Param			model		query		string	false	"only the GPUs of this model"
//	@Param			start_time	query		string	false	"RFC 3339 time or Unix seconds, inclusive (default: a day before end_time)"
//	@Param			end_time	query		string	false	"RFC 3339 time or Unix seconds, inclusive (default: now)"
//	@Success		200			{object}	FieldCoverage
//	@Failure		400			{object}	ErrorBody
//	@Failure		503			{object}	ErrorBody
//	@Router			/api/v1/fleet/fields [get]
func (a *API) fleetFields(c *gin.Context) {
	fq, err := fleetQuery(c, defaultEventWindow)
	if err != nil {
		writeError(c, err)
		return
	}
	cov, err := a.opts.Fleet.Fields(c.Request.Context(), telemetry.FieldsQuery{Range: fq.Range, Hostname: fq.Hostname, Model: fq.Model})
	if err != nil {
		writeError(c, err)
		return
	}
	out := FieldCoverage{StartTime: fq.Range.Start, EndTime: fq.Range.End, Kinds: make([]KindFields, len(cov.Kinds)),
		Devices: make([]DeviceFields, len(cov.Devices))}
	for i, k := range cov.Kinds {
		out.Kinds[i] = KindFields{ModelName: k.Model, GPUInstanceProfile: k.Profile, Devices: k.Devices, Fields: make([]FieldCount, len(k.Fields))}
		for j, f := range k.Fields {
			out.Kinds[i].Fields[j] = FieldCount{Field: f.Field, Devices: f.Devices, NonZero: f.NonZero}
		}
	}
	for i, d := range cov.Devices {
		out.Devices[i] = DeviceFields{UUID: d.GPU.UUID, GPUInstance: d.GPU.Instance, Hostname: d.GPU.Hostname, GPUIndex: d.GPU.Index,
			ModelName: d.GPU.ModelName, Fields: make([]FieldSeen, len(d.Fields)), Gaps: make([]FieldGap, len(d.Gaps))}
		for j, f := range d.Fields {
			out.Devices[i].Fields[j] = FieldSeen{Field: f.Field, First: f.First, Last: f.Last, Samples: f.Samples, AllZero: f.AllZero}
		}
		for j, g := range d.Gaps {
			out.Devices[i].Gaps[j] = FieldGap{Field: g.Field, Status: g.Status, Peers: g.Peers}
		}
	}
	c.JSON(http.StatusOK, out)
}

// FieldCoverage is the answer to GET /api/v1/fleet/fields.
type FieldCoverage struct {
	StartTime time.Time      `json:"start_time" example:"2025-07-17T20:42:34Z"`
	EndTime   time.Time      `json:"end_time" example:"2025-07-18T20:42:34Z"`
	Kinds     []KindFields   `json:"kinds"`
	Devices   []DeviceFields `json:"devices"`
}

// KindFields is what the devices of one kind report: a model's whole GPUs, or its MIG
// instances of one profile.
type KindFields struct {
	ModelName          string       `json:"model_name" example:"NVIDIA H100 80GB HBM3"`
	GPUInstanceProfile string       `json:"gpu_instance_profile,omitempty" example:"3g.40gb"`
	Devices            int          `json:"devices" example:"24"`
	Fields             []FieldCount `json:"fields"`
}

// FieldCount is how many devices of a kind report a field, and read it other than 0.
type FieldCount struct {
	Field   string `json:"field" example:"DCGM_FI_PROF_GR_ENGINE_ACTIVE"`
	Devices int    `json:"devices" example:"22"`
	NonZero int    `json:"non_zero" example:"20"`
}

// DeviceFields is what one device reports, and its gaps.
type DeviceFields struct {
	UUID        string      `json:"uuid" example:"GPU-5fd4f087-86f3-7a43-b711-4771313afc50"`
	GPUInstance string      `json:"gpu_instance,omitempty" example:"3"`
	Hostname    string      `json:"hostname" example:"node-1"`
	GPUIndex    int         `json:"gpu_index" example:"0"`
	ModelName   string      `json:"model_name" example:"NVIDIA H100 80GB HBM3"`
	Fields      []FieldSeen `json:"fields"`
	Gaps        []FieldGap  `json:"gaps"`
}

// FieldSeen is a field a device reports in the window.
type FieldSeen struct {
	Field   string    `json:"field" example:"DCGM_FI_DEV_GPU_UTIL"`
	First   time.Time `json:"first" example:"2025-07-17T20:42:34Z"`
	Last    time.Time `json:"last" example:"2025-07-18T20:42:04Z"`
	Samples int64     `json:"samples" example:"2880"`
	AllZero bool      `json:"all_zero"`
}

// FieldGap is a field a device does not really report: status not_reported, always_zero,
// zero_while_busy or zero_unlike_peers; peers is how many of its kind report it (read it
// other than 0, for the zero statuses).
type FieldGap struct {
	Field  string `json:"field" example:"DCGM_FI_PROF_GR_ENGINE_ACTIVE"`
	Status string `json:"status" example:"not_reported" enums:"not_reported,always_zero,zero_while_busy,zero_unlike_peers"`
	Peers  int    `json:"peers" example:"22"`
}
