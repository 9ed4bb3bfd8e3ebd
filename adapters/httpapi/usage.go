package httpapi

import (
	"encoding/csv"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
)

// usageCSVHeader is the first line of a usage report as CSV.
var usageCSVHeader = slices.Concat([]string{"group", "devices", "gpu_hours", "mean_utilization", "energy_kwh", "peak_memory_mib", "samples",
	"util_signals", "efficiency_class"}, shareNames(usage.EfficiencyFields))

// shareNames are the short names of fields' shares.
func shareNames(fields []string) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = usage.ShareName(f)
	}
	return out
}

// fleetUsage godoc
//
//	@Summary		Usage by namespace, pod, host or model: GPU-hours, utilisation, energy, peak memory
//	@Description	What each group used within [start_time, end_time] (default: the day before now). Each sample stands for the time until the device's next sample of the same field, whatever workload that one belongs to; a silence longer than twice the device's reporting interval is not use (the sample before it stands for one interval), nor is more than gap; only the part inside the window counts: reports of adjacent windows add up. Windows of 6 hours or more sum the whole hours the collectors' workload recorder accounted (the same sums, kept as long as workload records) and read the samples for the edges only; where the samples of the first hour are deleted, that hour counts whole and warnings says so. Each physical GPU counts once: a GPU reported once per pod at the same time (time-slicing) splits its time and energy equally among them; a MIG instance counts its compute slices' share of its GPU's time and energy, its utilisation from DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100 (util_signals says which field each device's came from). gpu_hours is that time over utilisation samples, mean_utilization the utilisation weighted by it (in %), energy_kwh the integral of DCGM_FI_DEV_POWER_USAGE, peak_memory_mib the highest DCGM_FI_DEV_FB_USED standing in the window; profiling and efficiency_class how well the group used what it held, as GET /api/v1/fleet/efficiency says (each profiling field's mean share of the model's peak, absent where not reported). Samples not attributed to a workload form the group "" under namespace and pod. As CSV with format=csv or Accept: text/csv.
//	@Tags			fleet
//	@Produce		json
//	@Produce		text/csv
//	@Param			by			query		string	false	"namespace, pod, host, model, gpu or label:<name>"	default(namespace)
//	@Param			namespace	query		string	false	"only samples attributed to this namespace"
//	@Param			hostname	query		string	false	"only the GPUs of this host"
//	@Param			model		query		string	false	"only the GPUs of this model"
//	@Param			gap			query		string	false	"the longest one sample stands for"	default(5m)
//	@Param			format		query		string	false	"json or csv"						Enums(json, csv)	default(json)
//	@Param			start_time	query		string	false	"RFC 3339 time or Unix seconds, inclusive (default: a day before end_time)"
//	@Param			end_time	query		string	false	"RFC 3339 time or Unix seconds, inclusive (default: now)"
//	@Success		200			{object}	UsageReport
//	@Failure		400			{object}	ErrorBody
//	@Failure		503			{object}	ErrorBody
//	@Router			/api/v1/fleet/usage [get]
func (a *API) fleetUsage(c *gin.Context) {
	fq, err := fleetQuery(c, defaultEventWindow)
	if err != nil {
		writeError(c, err)
		return
	}
	q := telemetry.UsageQuery{Range: fq.Range, By: telemetry.Grouping(c.DefaultQuery("by", string(telemetry.GroupNamespace))),
		Hostname: fq.Hostname, Model: fq.Model, Namespace: c.Query("namespace")}
	if q.Gap, err = durationParam(c, "gap", usage.DefaultGap); err != nil {
		writeError(c, err)
		return
	}
	asCSV, err := wantsCSV(c)
	if err != nil {
		writeError(c, err)
		return
	}
	report, err := a.opts.Fleet.Usage(c.Request.Context(), q)
	if err != nil {
		writeError(c, err)
		return
	}
	if asCSV {
		for _, w := range report.Warnings { // a CSV file has no room for them
			c.Writer.Header().Add("Warning", strconv.Quote(w))
		}
		writeUsageCSV(c, q, report.Groups)
		return
	}
	out := UsageReport{By: string(q.By), Namespace: q.Namespace, StartTime: q.Range.Start, EndTime: q.Range.End,
		Gap: q.Gap.String(), Data: make([]Usage, len(report.Groups)), Count: len(report.Groups), Warnings: report.Warnings}
	for i, u := range report.Groups {
		out.Data[i] = toUsage(u)
	}
	c.JSON(http.StatusOK, out)
}

func writeUsageCSV(c *gin.Context, q telemetry.UsageQuery, groups []telemetry.Usage) {
	c.Header("Content-Type", "text/csv; charset=utf-8")
	name := strings.Map(func(r rune) rune { // a label's name is the caller's
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '-'
	}, string(q.By))
	c.Header("Content-Disposition", `attachment; filename="usage-by-`+name+`.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write(usageCSVHeader)
	for _, g := range groups {
		u := toUsage(g)
		var signals []string // field=devices, space-separated, by field
		for _, field := range slices.Sorted(maps.Keys(u.UtilSignals)) {
			signals = append(signals, strings.ReplaceAll(field, " ", "")+"="+strconv.Itoa(u.UtilSignals[field]))
		}
		_ = w.Write(append([]string{u.Group, strconv.Itoa(u.Devices), csvNumber(&u.GPUHours), csvNumber(u.MeanUtilization), csvNumber(&u.EnergyKWh),
			csvNumber(u.PeakMemoryMiB), strconv.FormatInt(u.Samples, 10), strings.Join(signals, " "), u.EfficiencyClass},
			csvShares(u.Profiling, usage.EfficiencyFields)...))
	}
	w.Flush()
}

// csvNumber writes a number of a CSV answer in full, an absent one as an empty field.
func csvNumber(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}
