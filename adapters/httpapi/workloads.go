package httpapi

import (
	"encoding/csv"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload"
)

// defaultWorkloadPage is how many records a page holds unless limit says otherwise.
const defaultWorkloadPage = 1000

// Workload is a workload's hold on one device. The utilisation, activity and memory fields
// are absent where the device sent no such sample; sm_active, tensor_active and
// dram_active are absent where the exporter does not send the profiling field — not 0.
type Workload struct {
	ID              int64     `json:"id" example:"42"`
	UUID            string    `json:"uuid" example:"GPU-5fd4f087-86f3-7a43-b711-4771313afc50"`
	GPUInstance     string    `json:"gpu_instance,omitempty" example:"3"`
	Hostname        string    `json:"hostname" example:"node-01"`
	ModelName       string    `json:"model_name" example:"NVIDIA H100 80GB HBM3"`
	Namespace       string    `json:"namespace" example:"ml"`
	Pod             string    `json:"pod" example:"trainer-0"`
	Container       string    `json:"container" example:"main"`
	Start           time.Time `json:"start" example:"2025-07-18T08:00:00Z"`
	End             time.Time `json:"end" example:"2025-07-21T08:00:00Z"`
	LastSeen        time.Time `json:"last_seen" example:"2025-07-21T07:59:30Z"`
	Open            bool      `json:"open" example:"false"`
	GPUHours        float64   `json:"gpu_hours" example:"72"`
	MeanUtilization *float64  `json:"mean_utilization,omitempty" example:"63.2"`
	P95Utilization  *float64  `json:"p95_utilization,omitempty" example:"98"`
	IdleFraction    *float64  `json:"idle_fraction,omitempty" example:"0.04"`
	UtilSignal      string    `json:"util_signal,omitempty" example:"DCGM_FI_DEV_GPU_UTIL"`
	EnergyKWh       float64   `json:"energy_kwh" example:"36.1"`
	PeakMemoryMiB   *float64  `json:"peak_memory_mib,omitempty" example:"79647"`
	SMActive        *float64  `json:"sm_active,omitempty" example:"0.71"`
	TensorActive    *float64  `json:"tensor_active,omitempty" example:"0.33"`
	DRAMActive      *float64  `json:"dram_active,omitempty" example:"0.41"`
	// Profiling holds each profiling field reported during the hold: its mean share of the
	// model's peak (GET /api/v1/fleet/efficiency), and the GPU-hours it was reported over.
	Profiling map[string]EfficiencyShare `json:"profiling,omitempty"`
	// EfficiencyClass judges the hold by its SM activity (or its graphics engine's) and
	// memory: active, held_no_kernels, memory_held_compute_idle, or not_reported (neither
	// sent: never idle).
	EfficiencyClass string `json:"efficiency_class" example:"active" enums:"active,held_no_kernels,memory_held_compute_idle,not_reported"`
	Events          int    `json:"events" example:"1"`
	Samples         int64  `json:"samples" example:"8640"`
}

// WorkloadList is the answer to GET /api/v1/workloads: a page of records, the latest end
// first. next_cursor is present while more follow: pass it as cursor.
type WorkloadList struct {
	Data       []Workload `json:"data"`
	Count      int        `json:"count" example:"1"`
	NextCursor string     `json:"next_cursor,omitempty" example:"dzE6WzE3NTMwODQ4MDAwMDAwMDAsNDJd"`
}

func toWorkload(w telemetry.Workload) Workload {
	opt := func(v float64) *float64 {
		if math.IsNaN(v) {
			return nil
		}
		return &v
	}
	mean := func(field string) float64 {
		if a, ok := w.Profiling[field]; ok {
			return a.Mean
		}
		return math.NaN()
	}
	return Workload{ID: w.ID, UUID: w.GPU.UUID, GPUInstance: w.GPU.Instance, Hostname: w.GPU.Hostname, ModelName: w.GPU.ModelName,
		Namespace: w.Namespace, Pod: w.Pod, Container: w.Container, Start: w.Start, End: w.End, LastSeen: w.LastSeen, Open: w.Open,
		GPUHours: w.GPUHours, MeanUtilization: opt(w.MeanUtil), P95Utilization: opt(w.P95Util), IdleFraction: opt(w.IdleFraction()),
		UtilSignal: w.UtilSignal, EnergyKWh: w.EnergyKWh, PeakMemoryMiB: opt(w.PeakMemory), SMActive: opt(mean(usage.SMField)),
		TensorActive: opt(mean(usage.TensorField)), DRAMActive: opt(mean(usage.DRAMField)), Profiling: toShares(w.Profiling),
		Events: w.Events, Samples: w.Samples, EfficiencyClass: usage.Classify(mean(usage.SMField), mean(usage.EngineField), w.PeakMemory)}
}

// workloads godoc
//
//	@Summary		Workload records: who held which GPU, from when to when, and how well they used it
//	@Description	A record per workload's (namespace, pod, container) hold on a device (a GPU or a MIG instance), made by the collectors from the samples as they settle (a few minutes behind) and kept for --retention-workloads (2 years by default), after the samples are gone. A hold ends once its workload has reported nothing on the device for 5 minutes (samples of other workloads in between neither end it nor count in it); a workload seen again later gets a new record. gpu_hours, mean_utilization and energy_kwh are accounted as GET /api/v1/fleet/usage accounts them (shared GPUs split, MIG instances by their slices): a record equals the usage report of its pod over [start, end]. p95_utilization is the whole percent under which 95 % of the time was spent; idle_fraction the share of the time under 1 %; sm_active, tensor_active and dram_active the profiling ratios' means where the exporter sends them; efficiency_class held_no_kernels (SM active under 1 % of the time), memory_held_compute_idle (under 5 % with a GiB or more of memory held), active, or not_reported (no SM activity sent: never idle); events the health events (XID, ECC, row remap, throttling) that began during the hold. Records overlapping [start_time, end_time] when given, the latest end first. As CSV (every record selected, no paging) with format=csv or Accept: text/csv.
//	@Tags			workloads
//	@Produce		json
//	@Produce		text/csv
//	@Param			namespace	query		string	false	"only this namespace's"
//	@Param			pod			query		string	false	"only this pod's"
//	@Param			uuid		query		string	false	"only this device's: a GPU's UUID, or UUID/GPU_I_ID for a MIG instance"
//	@Param			hostname	query		string	false	"only the devices of this host"
//	@Param			model		query		string	false	"only the devices of this model"
//	@Param			state		query		string	false	"open (still holding) or closed"	Enums(open, closed)
//	@Param			start_time	query		string	false	"RFC 3339 time or Unix seconds: holds that end at or after it"
//	@Param			end_time	query		string	false	"RFC 3339 time or Unix seconds: holds that start at or before it"
//	@Param			limit		query		int		false	"records a page"	minimum(1)	maximum(10000)	default(1000)
//	@Param			cursor		query		string	false	"next_cursor of the page before"
//	@Param			format		query		string	false	"json or csv"	Enums(json, csv)	default(json)
//	@Success		200			{object}	WorkloadList
//	@Failure		400			{object}	ErrorBody
//	@Failure		503			{object}	ErrorBody
//	@Router			/api/v1/workloads [get]
func (a *API) workloads(c *gin.Context) {
	q := telemetry.WorkloadQuery{Namespace: c.Query("namespace"), Pod: c.Query("pod"), GPU: c.Query("uuid"),
		Hostname: c.Query("hostname"), Model: c.Query("model"), State: c.Query("state")}
	var err error
	if q.Range.Start, err = timeParam(c, "start_time"); err != nil {
		writeError(c, err)
		return
	}
	if q.Range.End, err = timeParam(c, "end_time"); err != nil {
		writeError(c, err)
		return
	}
	if q.Limit, err = intParam(c, "limit", defaultWorkloadPage); err != nil {
		writeError(c, err)
		return
	}
	asCSV, err := wantsCSV(c)
	if err != nil {
		writeError(c, err)
		return
	}
	if asCSV {
		a.writeWorkloadsCSV(c, q)
		return
	}
	page, next, err := workload.List(c.Request.Context(), a.opts.Workloads, q, c.Query("cursor"))
	if err != nil {
		writeError(c, err)
		return
	}
	out := WorkloadList{Data: make([]Workload, len(page)), Count: len(page), NextCursor: next}
	for i, w := range page {
		out.Data[i] = toWorkload(w)
	}
	c.JSON(http.StatusOK, out)
}

// wantsCSV reads format, or else the Accept header: whether the answer is CSV.
func wantsCSV(c *gin.Context) (bool, error) {
	switch format := c.Query("format"); format {
	case "":
		return strings.Contains(c.GetHeader("Accept"), "text/csv"), nil
	case "json", "csv":
		return format == "csv", nil
	default:
		return false, telemetry.Invalid("format", "%q is not json or csv", format)
	}
}

// workloadCSVHeader is the first line of workload records as CSV.
var workloadCSVHeader = slices.Concat([]string{"id", "uuid", "gpu_instance", "hostname", "model_name", "namespace", "pod", "container",
	"start", "end", "open", "gpu_hours", "mean_utilization", "p95_utilization", "idle_fraction", "energy_kwh",
	"peak_memory_mib", "sm_active", "tensor_active", "dram_active", "events", "samples", "efficiency_class"}, shareNames(shareCSVFields))

// shareCSVFields are the profiling fields whose shares follow a record's class in its CSV
// line: those its earlier columns do not hold.
var shareCSVFields = []string{usage.EngineField, usage.SMOccupancyField, usage.FP16Field, usage.FP32Field, usage.FP64Field,
	usage.PCIeTxField, usage.PCIeRxField, usage.NVLinkTxField, usage.NVLinkRxField}

// writeWorkloadsCSV writes every record q selects, a page at a time. A failure after the
// first page can only cut the file short: the status is sent.
func (a *API) writeWorkloadsCSV(c *gin.Context, q telemetry.WorkloadQuery) {
	q.Limit = workload.MaxPage
	page, next, err := workload.List(c.Request.Context(), a.opts.Workloads, q, c.Query("cursor"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="workloads.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write(workloadCSVHeader)
	for {
		for _, r := range page {
			d := toWorkload(r)
			_ = w.Write(append([]string{strconv.FormatInt(d.ID, 10), d.UUID, d.GPUInstance, d.Hostname, d.ModelName, d.Namespace,
				d.Pod, d.Container, d.Start.Format(time.RFC3339Nano), d.End.Format(time.RFC3339Nano), strconv.FormatBool(d.Open),
				csvNumber(&d.GPUHours), csvNumber(d.MeanUtilization), csvNumber(d.P95Utilization), csvNumber(d.IdleFraction), csvNumber(&d.EnergyKWh),
				csvNumber(d.PeakMemoryMiB), csvNumber(d.SMActive), csvNumber(d.TensorActive), csvNumber(d.DRAMActive), strconv.Itoa(d.Events),
				strconv.FormatInt(d.Samples, 10), d.EfficiencyClass}, csvShares(d.Profiling, shareCSVFields)...))
		}
		if next == "" {
			break
		}
		if page, next, err = workload.List(c.Request.Context(), a.opts.Workloads, q, next); err != nil {
			a.opts.Logger.WarnContext(c.Request.Context(), "workload records as CSV cut short", "err", err)
			break
		}
	}
	w.Flush()
}
