package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// health godoc
//
//	@Summary	Liveness: the process is up
//	@Tags		probes
//	@Success	200	{object}	Status
//	@Router		/health [get]
func (a *API) health(c *gin.Context) {
	c.JSON(http.StatusOK, Status{Status: "ok"})
}

// ready godoc
//
//	@Summary	Readiness: the process can serve (its database answers)
//	@Tags		probes
//	@Success	200	{object}	Status
//	@Failure	503	{object}	Status	"shutting down, or a dependency is unreachable"
//	@Router		/ready [get]
func (a *API) ready(c *gin.Context) {
	if a.stopping.Load() {
		c.JSON(http.StatusServiceUnavailable, Status{Status: "unavailable", Reason: "shutting down"})
		return
	}
	if a.opts.Ready != nil {
		if err := a.opts.Ready(c.Request.Context()); err != nil {
			c.JSON(http.StatusServiceUnavailable, Status{Status: "unavailable", Reason: err.Error()})
			return
		}
	}
	c.JSON(http.StatusOK, Status{Status: "ok"})
}

// listGPUs godoc
//
//	@Summary	List every GPU telemetry was received for
//	@Tags		gpus
//	@Success	200	{object}	GPUList
//	@Failure	503	{object}	ErrorBody
//	@Router		/api/v1/gpus [get]
func (a *API) listGPUs(c *gin.Context) {
	gpus, err := a.opts.Query.GPUs(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	out := GPUList{Data: make([]GPU, len(gpus)), Count: len(gpus)}
	for i, g := range gpus {
		out.Data[i] = toGPU(g)
	}
	c.JSON(http.StatusOK, out)
}

// gpuTelemetry godoc
//
//	@Summary		Telemetry of one GPU, ordered by time
//	@Description	Samples of the GPU within [start_time, end_time], both ends inclusive and optional.
//	@Tags			gpus
//	@Param			uuid		path		string	true	"GPU UUID"					example(GPU-5fd4f087-86f3-7a43-b711-4771313afc50)
//	@Param			start_time	query		string	false	"RFC 3339 time, inclusive"	example(2025-07-18T20:42:34Z)
//	@Param			end_time	query		string	false	"RFC 3339 time, inclusive"	example(2025-07-18T20:42:37Z)
//	@Param			limit		query		int		false	"page size, 1 to 1000"		default(100)	minimum(1)	maximum(1000)
//	@Param			offset		query		int		false	"samples to skip"			default(0)		minimum(0)
//	@Success		200			{object}	TelemetryPage
//	@Failure		400			{object}	ErrorBody
//	@Failure		404			{object}	ErrorBody	"unknown GPU"
//	@Failure		503			{object}	ErrorBody
//	@Router			/api/v1/gpus/{uuid}/telemetry [get]
func (a *API) gpuTelemetry(c *gin.Context) {
	q := telemetry.SampleQuery{GPU: c.Param("uuid"), Page: telemetry.Page{Limit: query.DefaultLimit}}
	var err error
	if q.Range.Start, err = timeParam(c, "start_time"); err != nil {
		writeError(c, err)
		return
	}
	if q.Range.End, err = timeParam(c, "end_time"); err != nil {
		writeError(c, err)
		return
	}
	if q.Page.Limit, err = intParam(c, "limit", q.Page.Limit); err != nil {
		writeError(c, err)
		return
	}
	if q.Page.Offset, err = intParam(c, "offset", 0); err != nil {
		writeError(c, err)
		return
	}
	samples, err := a.opts.Query.Samples(c.Request.Context(), q)
	if err != nil {
		writeError(c, err)
		return
	}
	out := TelemetryPage{UUID: q.GPU, Data: make([]Sample, len(samples)), Count: len(samples),
		Limit: q.Page.Limit, Offset: q.Page.Offset}
	for i, s := range samples {
		out.Data[i] = toSample(s)
	}
	c.JSON(http.StatusOK, out)
}

// stats godoc
//
//	@Summary	Counts of stored samples, GPUs and hosts
//	@Tags		stats
//	@Success	200	{object}	Stats
//	@Failure	503	{object}	ErrorBody
//	@Router		/api/v1/stats [get]
func (a *API) stats(c *gin.Context) {
	st, err := a.opts.Query.Stats(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, Stats{TotalRecords: st.TotalSamples, UniqueGPUs: st.UniqueGPUs, UniqueHosts: st.UniqueHosts})
}

// timeParam reads an optional RFC 3339 time; zero when absent.
func timeParam(c *gin.Context, name string) (time.Time, error) {
	raw, ok := c.GetQuery(name)
	if !ok {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, telemetry.Invalid(name, "%q is not an RFC 3339 time such as 2025-07-18T20:42:34Z", raw)
	}
	return t, nil
}

// intParam reads an optional integer, def when absent.
func intParam(c *gin.Context, name string, def int) (int, error) {
	raw, ok := c.GetQuery(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return 0, telemetry.Invalid(name, "%q is not an integer", raw)
	}
	return n, nil
}
