package httpapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// defaultFleetWindow is the window of a fleet query that names no start: the last hour,
// as a dashboard opens.
const defaultFleetWindow = time.Hour

// defaultLookback is how far back /api/v1/fleet/latest looks for a device's newest sample,
// as PromQL's instant queries do.
const defaultLookback = 5 * time.Minute

// fleetAggregate godoc
//
//	@Summary		A metric across the fleet, grouped
//	@Description	Summarises every sample of one metric within [start_time, end_time] (default: the hour before now), over every device or those of one host or model, grouped by host, model, device, namespace, pod (namespace/pod) or a device label (label:instance); without by, the whole fleet is one group. Samples not attributed to a workload form the group "" under namespace and pod. count, avg, min and max are exact; p50, p95 and p99 come from a quantile sketch and are within 1 % of the exact value. Computed as the store streams the series: no sample list is held. A window of a day or more reads the coarsest downsampled tier max_source_resolution allows (resolution says which): count, avg, min and max stay exact, and p50, p95 and p99 are then those of the tier's bucket means, each weighted by its samples; max_source_resolution=raw reads the samples.
//	@Tags			fleet
//	@Produce		json
//	@Param			metric					query		string	true	"a DCGM field"	example(DCGM_FI_DEV_GPU_UTIL)
//	@Param			by						query		string	false	"host, model, gpu, namespace, pod or label:<name>"
//	@Param			hostname				query		string	false	"only the GPUs of this host"
//	@Param			model					query		string	false	"only the GPUs of this model"
//	@Param			start_time				query		string	false	"RFC 3339 time or Unix seconds, inclusive (default: an hour before end_time)"
//	@Param			end_time				query		string	false	"RFC 3339 time or Unix seconds, inclusive (default: now)"
//	@Param			max_source_resolution	query		string	false	"the coarsest downsampled tier a window of a day or more may read: auto (the coarsest), raw (the samples only), 5m or 1h"	default(auto)
//	@Success		200						{object}	FleetAggregate
//	@Failure		400						{object}	ErrorBody
//	@Failure		503						{object}	ErrorBody
//	@Router			/api/v1/fleet/aggregate [get]
func (a *API) fleetAggregate(c *gin.Context) {
	q, err := fleetQuery(c, defaultFleetWindow)
	if err != nil {
		writeError(c, err)
		return
	}
	by := c.Query("by")
	agg, err := a.opts.Fleet.Aggregate(c.Request.Context(), q, telemetry.Grouping(by))
	if err != nil {
		writeError(c, err)
		return
	}
	out := FleetAggregate{Metric: q.Metric, By: by, StartTime: q.Range.Start, EndTime: q.Range.End,
		Data: make([]FleetGroup, len(agg.Groups)), Count: len(agg.Groups), Resolution: resolutionText(agg.Resolution)}
	for i, g := range agg.Groups {
		out.Data[i] = FleetGroup{Group: g.Group, Devices: g.Devices, Samples: g.Samples, Avg: g.Avg, Min: g.Min, Max: g.Max,
			P50: g.P50, P95: g.P95, P99: g.P99}
	}
	c.JSON(http.StatusOK, out)
}

// fleetTop godoc
//
//	@Summary		The devices highest (or lowest) in a metric
//	@Description	Ranks the devices by agg of their samples of one metric within [start_time, end_time] (default: the hour before now) and returns the first n; devices without samples there are left out. timestamp is the time of each device's newest sample in the window. A window of a day or more is read from the coarsest downsampled tier max_source_resolution allows, with the same answer.
//	@Tags			fleet
//	@Produce		json
//	@Param			metric					query		string	true	"a DCGM field"										example(DCGM_FI_DEV_GPU_TEMP)
//	@Param			n						query		int		false	"how many devices, 1 to 1000"						default(10)							minimum(1)	maximum(1000)
//	@Param			agg						query		string	false	"what ranks a device"								Enums(avg, min, max, last, count)	default(avg)
//	@Param			order					query		string	false	"desc: the highest first; asc: the lowest first"	Enums(desc, asc)					default(desc)
//	@Param			hostname				query		string	false	"only the GPUs of this host"
//	@Param			model					query		string	false	"only the GPUs of this model"
//	@Param			start_time				query		string	false	"RFC 3339 time or Unix seconds, inclusive (default: an hour before end_time)"
//	@Param			end_time				query		string	false	"RFC 3339 time or Unix seconds, inclusive (default: now)"
//	@Param			max_source_resolution	query		string	false	"the coarsest downsampled tier a window of a day or more may read: auto, raw (the samples only), 5m or 1h"	default(auto)
//	@Success		200						{object}	DeviceValues
//	@Failure		400						{object}	ErrorBody
//	@Failure		503						{object}	ErrorBody
//	@Router			/api/v1/fleet/top [get]
func (a *API) fleetTop(c *gin.Context) {
	q, err := fleetQuery(c, defaultFleetWindow)
	if err != nil {
		writeError(c, err)
		return
	}
	n, err := intParam(c, "n", 10)
	if err != nil {
		writeError(c, err)
		return
	}
	var bottom bool
	switch order := c.DefaultQuery("order", "desc"); order {
	case "desc":
	case "asc":
		bottom = true
	default:
		writeError(c, telemetry.Invalid("order", "%q is not desc or asc", order))
		return
	}
	agg := telemetry.Aggregation(c.DefaultQuery("agg", string(telemetry.AggAvg)))
	devices, err := a.opts.Fleet.Top(c.Request.Context(), q, agg, n, bottom)
	if err != nil {
		writeError(c, err)
		return
	}
	writeDeviceValues(c, q, devices, "")
}

// fleetLatest godoc
//
//	@Summary		Every device's latest value of a metric, in one call
//	@Description	Every device (or those of one host or model), by host and index, with its newest sample of the metric within lookback before time (default: 5m before now), as a PromQL instant query picks it: what a fleet heatmap shows. A device with none has no value. A page holds the devices of limit GPUs at most (10,000 by default and at most); next_cursor, while more follow, asks for the next.
//	@Tags			fleet
//	@Produce		json
//	@Param			metric		query		string	true	"a DCGM field"	example(DCGM_FI_DEV_GPU_UTIL)
//	@Param			time		query		string	false	"RFC 3339 time or Unix seconds (default: now)"
//	@Param			lookback	query		string	false	"how far back a sample counts"	default(5m)
//	@Param			hostname	query		string	false	"only the GPUs of this host"
//	@Param			model		query		string	false	"only the GPUs of this model"
//	@Param			limit		query		int		false	"GPUs a page, each with its MIG instances"	minimum(1)	maximum(10000)	default(10000)
//	@Param			cursor		query		string	false	"next_cursor of the page before"
//	@Success		200			{object}	DeviceValues
//	@Failure		400			{object}	ErrorBody
//	@Failure		503			{object}	ErrorBody
//	@Router			/api/v1/fleet/latest [get]
func (a *API) fleetLatest(c *gin.Context) {
	at, err := timeParam(c, "time")
	if err != nil {
		writeError(c, err)
		return
	}
	if at.IsZero() {
		at = time.Now().UTC()
	}
	lookback, err := durationParam(c, "lookback", defaultLookback)
	if err != nil {
		writeError(c, err)
		return
	}
	limit, err := intParam(c, "limit", query.MaxFleetLimit)
	if err != nil {
		writeError(c, err)
		return
	}
	q := telemetry.FleetQuery{Metric: c.Query("metric"), Hostname: c.Query("hostname"), Model: c.Query("model"),
		Range: telemetry.TimeRange{Start: at.Add(-lookback), End: at}}
	devices, next, err := a.opts.Fleet.Latest(c.Request.Context(), q, limit, c.Query("cursor"))
	if err != nil {
		writeError(c, err)
		return
	}
	writeDeviceValues(c, q, devices, next)
}

// fleetQuery reads the parameters the fleet routes share; a window without a start is the
// span before its end (now by default).
func fleetQuery(c *gin.Context, span time.Duration) (telemetry.FleetQuery, error) {
	q := telemetry.FleetQuery{Metric: c.Query("metric"), Hostname: c.Query("hostname"), Model: c.Query("model")}
	var err error
	if q.Range.Start, err = timeParam(c, "start_time"); err != nil {
		return q, err
	}
	if q.Range.End, err = timeParam(c, "end_time"); err != nil {
		return q, err
	}
	if q.Range.End.IsZero() {
		q.Range.End = time.Now().UTC()
	}
	if q.Range.Start.IsZero() {
		q.Range.Start = q.Range.End.Add(-span)
	}
	q.MaxResolution, err = telemetry.ParseMaxResolution(c.Query("max_source_resolution"))
	return q, err
}

func writeDeviceValues(c *gin.Context, q telemetry.FleetQuery, devices []telemetry.DeviceValue, next string) {
	out := DeviceValues{Metric: q.Metric, StartTime: q.Range.Start, EndTime: q.Range.End,
		Data: make([]DeviceValue, len(devices)), Count: len(devices), NextCursor: next}
	for i, d := range devices {
		out.Data[i] = toDeviceValue(d)
	}
	c.JSON(http.StatusOK, out)
}
