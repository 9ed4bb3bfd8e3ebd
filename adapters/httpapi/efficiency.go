package httpapi

import (
	"math"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
)

// fleetEfficiency godoc
//
//	@Summary		How well each workload uses the GPUs it holds: SM, tensor, FP pipes, DRAM, PCIe and NVLink as shares of the model's peak
//	@Description	For each group (by pod, namespace, host, model, gpu or label:<name>) within [start_time, end_time] (default: the day before now), over the time it held its devices as the usage report counts it (a GPU shared by several pods at once splits its time among them; a MIG instance counts its share of its GPU): the time-weighted mean of each profiling field reported — DCGM_FI_PROF_GR_ENGINE_ACTIVE, SM_ACTIVE, SM_OCCUPANCY, PIPE_TENSOR_ACTIVE, PIPE_FP16/FP32/FP64_ACTIVE, DRAM_ACTIVE, already shares of peak, and PCIE_TX/RX_BYTES, NVLINK_TX/RX_BYTES as shares of the model's link speed per direction (docs/api.md lists the models known) — with the GPU-hours it was reported over; the fields reported for none of the time (not_reported: never read as 0); and a class: held_no_kernels (SMs, or the graphics engine where SM activity is not reported, busy under 1 % of the time), memory_held_compute_idle (under 5 % with a GiB or more of memory held), active, or not_reported (neither SM activity nor the graphics engine reported: nothing to judge by, never idle); time no pod held with no kernels (group "" by pod or namespace, or a device no pod held) is idle. Windows of 6 hours or more read the hourly sums the collectors record (kept as long as the workload records, after the samples are gone) and the samples for their edges, as GET /api/v1/fleet/usage does; hours recorded before a version that kept the profiling sums read as not reported.
//	@Tags			fleet
//	@Produce		json
//	@Param			by			query		string	false	"namespace, pod, host, model, gpu or label:<name>"	default(pod)
//	@Param			namespace	query		string	false	"only samples attributed to this namespace"
//	@Param			hostname	query		string	false	"only the GPUs of this host"
//	@Param			model		query		string	false	"only the GPUs of this model"
//	@Param			start_time	query		string	false	"RFC 3339 time or Unix seconds, inclusive (default: a day before end_time)"
//	@Param			end_time	query		string	false	"RFC 3339 time or Unix seconds, inclusive (default: now)"
//	@Success		200			{object}	EfficiencyReport
//	@Failure		400			{object}	ErrorBody
//	@Failure		503			{object}	ErrorBody
//	@Router			/api/v1/fleet/efficiency [get]
func (a *API) fleetEfficiency(c *gin.Context) {
	fq, err := fleetQuery(c, defaultEventWindow)
	if err != nil {
		writeError(c, err)
		return
	}
	q := telemetry.UsageQuery{Range: fq.Range, By: telemetry.Grouping(c.DefaultQuery("by", string(telemetry.GroupPod))),
		Hostname: fq.Hostname, Model: fq.Model, Namespace: c.Query("namespace")}
	report, err := a.opts.Fleet.Usage(c.Request.Context(), q)
	if err != nil {
		writeError(c, err)
		return
	}
	out := EfficiencyReport{By: string(q.By), StartTime: q.Range.Start, EndTime: q.Range.End, Data: make([]Efficiency, len(report.Groups)),
		Count: len(report.Groups), Warnings: report.Warnings}
	for i, g := range report.Groups {
		e := Efficiency{Group: g.Group, Devices: g.Devices, GPUHours: g.GPUHours, Class: g.Class, Fields: toShares(g.Profiling),
			NotReported: []string{}}
		if e.Fields == nil {
			e.Fields = map[string]EfficiencyShare{}
		}
		for _, field := range usage.EfficiencyFields {
			if _, ok := g.Profiling[field]; !ok {
				e.NotReported = append(e.NotReported, field)
			}
		}
		if !math.IsNaN(g.PeakMemory) {
			e.PeakMemory = &g.PeakMemory
		}
		out.Data[i] = e
	}
	c.JSON(http.StatusOK, out)
}

// toShares is each field's mean share and hours, nil for none.
func toShares(profiling map[string]telemetry.Activity) map[string]EfficiencyShare {
	if len(profiling) == 0 {
		return nil
	}
	out := make(map[string]EfficiencyShare, len(profiling))
	for field, a := range profiling {
		out[field] = EfficiencyShare{Share: a.Mean, Hours: a.Hours}
	}
	return out
}

// csvShares are the shares of fields as CSV fields, empty where not reported.
func csvShares(shares map[string]EfficiencyShare, fields []string) []string {
	out := make([]string, len(fields))
	for i, field := range fields {
		if s, ok := shares[field]; ok {
			out[i] = csvNumber(&s.Share)
		}
	}
	return out
}

// EfficiencyReport is the answer to GET /api/v1/fleet/efficiency, by group.
type EfficiencyReport struct {
	By        string       `json:"by" example:"pod"`
	StartTime time.Time    `json:"start_time" example:"2025-07-17T20:42:34Z"`
	EndTime   time.Time    `json:"end_time" example:"2025-07-18T20:42:34Z"`
	Data      []Efficiency `json:"data"`
	Count     int          `json:"count" example:"12"`
	// Warnings says where the answer is not what was asked (see GET /api/v1/fleet/usage).
	Warnings []string `json:"warnings,omitempty"`
}

// Efficiency is how well one group used what it held.
type Efficiency struct {
	Group      string   `json:"group" example:"team-a/train-0"`
	Devices    int      `json:"devices" example:"8"`
	GPUHours   float64  `json:"gpu_hours" example:"192"`
	PeakMemory *float64 `json:"peak_memory_mib,omitempty" example:"61440"`
	// Fields holds each profiling field reported: its mean share of the model's peak, and
	// the GPU-hours it was reported over.
	Fields map[string]EfficiencyShare `json:"fields"`
	// NotReported are the profiling fields reported for none of the group's time.
	NotReported []string `json:"not_reported"`
	Class       string   `json:"class" example:"active" enums:"active,held_no_kernels,memory_held_compute_idle,not_reported,idle"`
}

// EfficiencyShare is a field's mean share of peak, over the GPU-hours it was reported.
type EfficiencyShare struct {
	Share float64 `json:"share" example:"0.42"`
	Hours float64 `json:"hours" example:"192"`
}
