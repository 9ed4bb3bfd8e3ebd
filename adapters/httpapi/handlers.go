package httpapi

import (
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/common/model"

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
//	@Summary	Readiness: the process can serve (the servers it uses answer)
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
//	@Summary	List the GPUs telemetry was received for, a page at a time
//	@Tags		gpus
//	@Param		hostname	query		string	false	"only GPUs of this host"
//	@Param		model		query		string	false	"only GPUs of this model"	example(NVIDIA H100 80GB HBM3)
//	@Param		limit		query		int		false	"GPUs per page, 1 to 1000"	default(1000)	minimum(1)	maximum(1000)
//	@Param		cursor		query		string	false	"next_cursor of the previous page"
//	@Success	200			{object}	GPUList
//	@Failure	400			{object}	ErrorBody	"bad limit or cursor"
//	@Failure	503			{object}	ErrorBody
//	@Router		/api/v1/gpus [get]
func (a *API) listGPUs(c *gin.Context) {
	limit, err := intParam(c, "limit", query.DefaultListLimit)
	if err != nil {
		writeError(c, err)
		return
	}
	f := telemetry.GPUFilter{Hostname: c.Query("hostname"), Model: c.Query("model")}
	gpus, next, err := a.opts.Query.GPUs(c.Request.Context(), f, limit, c.Query("cursor"))
	if err != nil {
		writeError(c, err)
		return
	}
	writeList(c, gpus, func(g telemetry.GPUInfo) any { return toGPU(g) }, limit, next)
}

// getGPU godoc
//
//	@Summary	One GPU, with its MIG instances, or one MIG instance
//	@Tags		gpus
//	@Param		uuid			path		string	true	"GPU UUID"	example(GPU-5fd4f087-86f3-7a43-b711-4771313afc50)
//	@Param		gpu_instance	query		string	false	"a MIG instance of the GPU (its GPU_I_ID)"
//	@Success	200				{object}	GPU
//	@Failure	404				{object}	ErrorBody	"unknown GPU or instance"
//	@Failure	503				{object}	ErrorBody
//	@Router		/api/v1/gpus/{uuid} [get]
func (a *API) getGPU(c *gin.Context) {
	key, err := deviceKey(c)
	if err != nil {
		writeError(c, err)
		return
	}
	g, err := a.opts.Query.GPU(c.Request.Context(), key)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toGPU(g))
}

// gpuTelemetry godoc
//
//	@Summary		Samples of one GPU, a page at a time
//	@Description	Samples of the GPU within [start_time, end_time] (both optional and inclusive), ordered by time, paged by limit with offset or, steadier while data arrives, the next_cursor of the previous page.
//	@Description	Aggregates are at /api/v1/gpus/{uuid}/telemetry/aggregate, the whole window as CSV at /api/v1/gpus/{uuid}/telemetry/export.
//	@Tags			gpus
//	@Produce		json
//	@Param			uuid			path		string		true	"GPU UUID"	example(GPU-5fd4f087-86f3-7a43-b711-4771313afc50)
//	@Param			gpu_instance	query		string		false	"a MIG instance of the GPU (its GPU_I_ID)"
//	@Param			start_time		query		string		false	"RFC 3339 time (fractional seconds allowed) or Unix seconds, inclusive"	example(2025-07-18T20:42:34Z)
//	@Param			end_time		query		string		false	"RFC 3339 time (fractional seconds allowed) or Unix seconds, inclusive"	example(2025-07-18T20:42:37Z)
//	@Param			metric			query		[]string	false	"only these metrics (repeat the parameter)"								collectionFormat(multi)
//	@Param			order			query		string		false	"asc or desc"															Enums(asc, desc)	default(asc)
//	@Param			limit			query		int			false	"page size, 1 to 1000"													default(100)		minimum(1)	maximum(1000)
//	@Param			offset			query		int			false	"samples to skip"														default(0)			minimum(0)
//	@Param			cursor			query		string		false	"next_cursor of the previous page"
//	@Success		200				{object}	TelemetryPage
//	@Failure		400				{object}	ErrorBody
//	@Failure		404				{object}	ErrorBody	"unknown GPU"
//	@Failure		503				{object}	ErrorBody
//	@Router			/api/v1/gpus/{uuid}/telemetry [get]
func (a *API) gpuTelemetry(c *gin.Context) {
	for _, moved := range [][2]string{{"step", "aggregate"}, {"agg", "aggregate"}, {"format", "export"}} {
		if c.Query(moved[0]) != "" {
			writeError(c, telemetry.Invalid(moved[0], "is not a parameter of this route: see /api/v1/gpus/%s/telemetry/%s", c.Param("uuid"), moved[1]))
			return
		}
	}
	q, err := sampleQuery(c)
	if err != nil {
		writeError(c, err)
		return
	}
	enc := pageEncoders.Get().(*pageEncoder)
	defer pageEncoders.Put(enc)
	enc.begin(c.Param("uuid"))
	next, err := a.opts.Query.Samples(c.Request.Context(), q, func(s telemetry.Sample) error {
		enc.add(s)
		return nil
	})
	if err != nil {
		writeError(c, err)
		return
	}
	body := enc.end(TelemetryPage{Limit: q.Page.Limit, Offset: q.Page.Offset, NextCursor: next})
	c.Header("Content-Length", strconv.Itoa(len(body))) // one write, no chunked framing
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

// gpuAggregate godoc
//
//	@Summary		Aggregates of one GPU's telemetry
//	@Description	One value per metric per step of the window [start_time, end_time] (both optional and inclusive): agg of the samples in each bucket, buckets aligned to the Unix epoch, computed on the server (the raw samples never leave it); values that are not numbers (DCGM's blanks) are left out of every aggregation and its count. At most 10,000 values; truncated says when there were more. Over a window bounded at both ends with a step that is a multiple of 5m or 1h, the answer is read from the downsampled tier of that step — the same values as from the samples, and still there once retention has deleted them — and resolution says which it read.
//	@Tags			gpus
//	@Produce		json
//	@Param			uuid					path		string		true	"GPU UUID"	example(GPU-5fd4f087-86f3-7a43-b711-4771313afc50)
//	@Param			gpu_instance			query		string		false	"a MIG instance of the GPU (its GPU_I_ID)"
//	@Param			step					query		string		true	"bucket duration, whole seconds (e.g. 1m)"																																example(1m)
//	@Param			agg						query		string		false	"aggregation per bucket"																																				Enums(avg, min, max, last, count)	default(avg)
//	@Param			start_time				query		string		false	"RFC 3339 time (fractional seconds allowed) or Unix seconds, inclusive"																									example(2025-07-18T20:42:34Z)
//	@Param			end_time				query		string		false	"RFC 3339 time (fractional seconds allowed) or Unix seconds, inclusive"																									example(2025-07-18T20:42:37Z)
//	@Param			metric					query		[]string	false	"only these metrics (repeat the parameter)"																																collectionFormat(multi)
//	@Param			max_source_resolution	query		string		false	"the coarsest downsampled tier the answer may read: auto (the coarsest whose step divides step, over a window bounded at both ends), raw (the samples only), 5m or 1h"	default(auto)
//	@Success		200						{object}	AggregatePage
//	@Failure		400						{object}	ErrorBody
//	@Failure		404						{object}	ErrorBody	"unknown GPU"
//	@Failure		503						{object}	ErrorBody
//	@Router			/api/v1/gpus/{uuid}/telemetry/aggregate [get]
func (a *API) gpuAggregate(c *gin.Context) {
	if c.Query("step") == "" {
		writeError(c, telemetry.Invalid("step", "is required: a bucket duration such as 30s, 1m or 1h"))
		return
	}
	q, err := sampleQuery(c)
	if err != nil {
		writeError(c, err)
		return
	}
	a.aggregate(c, q)
}

// gpuExport godoc
//
//	@Summary		One GPU's telemetry as CSV
//	@Description	Every sample of the GPU within [start_time, end_time] (both optional and inclusive), in time order, streamed as CSV without paging: timestamp, metric, value, container, pod, namespace.
//	@Tags			gpus
//	@Produce		text/csv
//	@Param			uuid			path		string		true	"GPU UUID"	example(GPU-5fd4f087-86f3-7a43-b711-4771313afc50)
//	@Param			gpu_instance	query		string		false	"a MIG instance of the GPU (its GPU_I_ID)"
//	@Param			start_time		query		string		false	"RFC 3339 time (fractional seconds allowed) or Unix seconds, inclusive"	example(2025-07-18T20:42:34Z)
//	@Param			end_time		query		string		false	"RFC 3339 time (fractional seconds allowed) or Unix seconds, inclusive"	example(2025-07-18T20:42:37Z)
//	@Param			metric			query		[]string	false	"only these metrics (repeat the parameter)"								collectionFormat(multi)
//	@Param			order			query		string		false	"asc or desc"															Enums(asc, desc)	default(asc)
//	@Success		200				{string}	string		"CSV"
//	@Failure		400				{object}	ErrorBody
//	@Failure		404				{object}	ErrorBody	"unknown GPU"
//	@Failure		503				{object}	ErrorBody
//	@Router			/api/v1/gpus/{uuid}/telemetry/export [get]
func (a *API) gpuExport(c *gin.Context) {
	q, err := sampleQuery(c)
	if err != nil {
		writeError(c, err)
		return
	}
	a.exportCSV(c, q)
}

func (a *API) aggregate(c *gin.Context, q telemetry.SampleQuery) {
	step, err := time.ParseDuration(c.Query("step"))
	if err != nil {
		writeError(c, telemetry.Invalid("step", "%q is not a duration such as 30s, 1m or 1h", c.Query("step")))
		return
	}
	agg := telemetry.Aggregation(c.DefaultQuery("agg", string(telemetry.AggAvg)))
	maxRes, err := telemetry.ParseMaxResolution(c.Query("max_source_resolution"))
	if err != nil {
		writeError(c, err)
		return
	}
	res, err := a.opts.Query.Aggregate(c.Request.Context(), telemetry.AggregateQuery{
		GPU: q.GPU, Range: q.Range, Metrics: q.Metrics, Step: step, Agg: agg, MaxResolution: maxRes,
	})
	if err != nil {
		writeError(c, err)
		return
	}
	buckets := res.Buckets
	page := AggregatePage{UUID: c.Param("uuid"), Step: step.String(), Agg: string(agg), Truncated: res.Truncated,
		Resolution: resolutionText(res.Resolution), Warnings: res.Warnings}
	buf, _ := aggregateBodies.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	body := appendAggregatePage(slices.Grow((*buf)[:0], 128+96*len(buckets)), page, buckets)
	c.Header("Content-Length", strconv.Itoa(len(body)))
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
	*buf = body
	aggregateBodies.Put(buf)
}

// resolutionText names what an answer read: raw, or a tier's step.
func resolutionText(d time.Duration) string {
	if d == 0 {
		return "raw"
	}
	return model.Duration(d).String()
}

// aggregateBodies are the buffers aggregate responses are encoded into, reused: a day by the
// minute of every metric is 600 kB, whose zeroing alone took ~4 % of the API's CPU when
// each was allocated anew.
var aggregateBodies sync.Pool

// csvHeader is the first line of a CSV export.
var csvHeader = []string{"timestamp", "metric", "value", "container", "pod", "namespace"}

// exportCSV streams the whole window, flushing as it goes: memory stays flat however large
// the window. An error after the first row can only cut the download short.
func (a *API) exportCSV(c *gin.Context, q telemetry.SampleQuery) {
	var w *csv.Writer
	begin := func() {
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Header("Content-Disposition", `attachment; filename="`+q.GPU+`.csv"`)
		c.Status(http.StatusOK)
		w = csv.NewWriter(c.Writer)
		_ = w.Write(csvHeader)
	}
	n := 0
	err := a.opts.Query.EachSample(c.Request.Context(), q, func(s telemetry.Sample) error {
		if w == nil {
			begin()
		}
		_ = w.Write([]string{s.Time.Format(time.RFC3339Nano), s.Metric, strconv.FormatFloat(s.Value, 'g', -1, 64),
			s.Container, s.Pod, s.Namespace})
		if n++; n%1000 == 0 {
			w.Flush()
			c.Writer.Flush()
		}
		return w.Error()
	})
	switch {
	case err != nil && w == nil:
		writeError(c, err)
		return
	case err != nil:
		_ = c.Error(err)
		a.opts.Logger.WarnContext(c.Request.Context(), "CSV export cut short", "gpu", q.GPU, "rows", n, "err", err)
	case w == nil: // an empty window: just the header
		begin()
	}
	w.Flush()
}

// latest godoc
//
//	@Summary	The latest value of every metric of one GPU
//	@Tags		gpus
//	@Param		uuid			path		string	true	"GPU UUID"	example(GPU-5fd4f087-86f3-7a43-b711-4771313afc50)
//	@Param		gpu_instance	query		string	false	"a MIG instance of the GPU (its GPU_I_ID)"
//	@Success	200				{object}	LatestList
//	@Failure	404				{object}	ErrorBody	"unknown GPU"
//	@Failure	503				{object}	ErrorBody
//	@Router		/api/v1/gpus/{uuid}/latest [get]
func (a *API) latest(c *gin.Context) {
	key, err := deviceKey(c)
	if err != nil {
		writeError(c, err)
		return
	}
	samples, err := a.opts.Query.Latest(c.Request.Context(), key)
	if err != nil {
		writeError(c, err)
		return
	}
	out := LatestList{UUID: c.Param("uuid"), Data: make([]Sample, len(samples)), Count: len(samples)}
	for i, s := range samples {
		out.Data[i] = toSample(s)
	}
	c.JSON(http.StatusOK, out)
}

// hosts godoc
//
//	@Summary	Hosts with their GPU counts and last sample times, a page at a time
//	@Tags		hosts
//	@Param		limit	query		int		false	"hosts per page, 1 to 1000"	default(1000)	minimum(1)	maximum(1000)
//	@Param		cursor	query		string	false	"next_cursor of the previous page"
//	@Success	200		{object}	HostList
//	@Failure	400		{object}	ErrorBody	"bad limit or cursor"
//	@Failure	503		{object}	ErrorBody
//	@Router		/api/v1/hosts [get]
func (a *API) hosts(c *gin.Context) {
	limit, err := intParam(c, "limit", query.DefaultListLimit)
	if err != nil {
		writeError(c, err)
		return
	}
	hosts, next, err := a.opts.Query.Hosts(c.Request.Context(), limit, c.Query("cursor"))
	if err != nil {
		writeError(c, err)
		return
	}
	writeList(c, hosts, func(h telemetry.Host) any {
		return Host{Hostname: h.Hostname, GPUCount: h.GPUs, LastSeen: optTime(h.LastSeen)}
	}, limit, next)
}

// metrics godoc
//
//	@Summary	Metrics present, with unit and description for the DCGM fields known
//	@Tags		metrics
//	@Success	200	{object}	MetricList
//	@Failure	503	{object}	ErrorBody
//	@Router		/api/v1/metrics [get]
func (a *API) metrics(c *gin.Context) {
	metrics, err := a.opts.Query.Metrics(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	out := MetricList{Data: make([]Metric, len(metrics)), Count: len(metrics)}
	for i, m := range metrics {
		out.Data[i] = Metric{Name: m.Name, Unit: m.Unit, Description: m.Description}
	}
	c.JSON(http.StatusOK, out)
}

// stats godoc
//
//	@Summary	Counts of stored samples, GPUs and hosts, and the oldest and newest sample times
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
	c.JSON(http.StatusOK, Stats{TotalRecords: st.TotalSamples, UniqueGPUs: st.UniqueGPUs, UniqueHosts: st.UniqueHosts,
		OldestSample: optTime(st.Oldest), NewestSample: optTime(st.Newest)})
}

// sampleQuery reads the query parameters shared by the telemetry views.
// deviceKey names the device a route asks for: the GPU of the path, or one of its MIG
// instances with ?gpu_instance=ID.
func deviceKey(c *gin.Context) (string, error) {
	inst := c.Query("gpu_instance")
	if _, err := strconv.ParseUint(inst, 10, 16); inst != "" && err != nil {
		return "", telemetry.Invalid("gpu_instance", "%q is not a MIG GPU instance ID (GPU_I_ID, a small number)", inst)
	}
	return telemetry.DeviceKey(c.Param("uuid"), inst), nil
}

func sampleQuery(c *gin.Context) (telemetry.SampleQuery, error) {
	key, err := deviceKey(c)
	if err != nil {
		return telemetry.SampleQuery{}, err
	}
	q := telemetry.SampleQuery{GPU: key, Metrics: c.QueryArray("metric"),
		Page: telemetry.Page{Limit: query.DefaultLimit, Cursor: c.Query("cursor")}}
	if q.Range.Start, err = timeParam(c, "start_time"); err != nil {
		return q, err
	}
	if q.Range.End, err = timeParam(c, "end_time"); err != nil {
		return q, err
	}
	if q.Page.Limit, err = intParam(c, "limit", q.Page.Limit); err != nil {
		return q, err
	}
	if q.Page.Offset, err = intParam(c, "offset", 0); err != nil {
		return q, err
	}
	switch order := c.DefaultQuery("order", "asc"); order {
	case "asc":
	case "desc":
		q.Desc = true
	default:
		return q, telemetry.Invalid("order", "%q is not asc or desc", order)
	}
	return q, nil
}

// timeParam reads an optional time: RFC 3339, with or without fractional seconds, or Unix
// seconds (fractions allowed). Zero when absent.
func timeParam(c *gin.Context, name string) (time.Time, error) {
	raw, ok := c.GetQuery(name)
	if !ok {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, raw); err == nil {
		return t, nil
	}
	if secs, err := strconv.ParseFloat(raw, 64); err == nil && secs >= 0 && secs < 1e11 {
		whole, frac := math.Modf(secs)
		return time.Unix(int64(whole), int64(math.Round(frac*1e6))*1e3).UTC(), nil
	}
	return time.Time{}, telemetry.Invalid(name, "%q is not an RFC 3339 time such as 2025-07-18T20:42:34Z or Unix seconds", raw)
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

// durationParam reads an optional positive duration (30s, 5m, 1h30m), def when absent.
// numberParam is a query parameter's number, or def when it is absent.
func numberParam(c *gin.Context, name string, def float64) (float64, error) {
	raw, ok := c.GetQuery(name)
	if !ok {
		return def, nil
	}
	v, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		return 0, telemetry.Invalid(name, "%q is not a number", raw)
	}
	return v, nil
}

func durationParam(c *gin.Context, name string, def time.Duration) (time.Duration, error) {
	raw, ok := c.GetQuery(name)
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d <= 0 {
		return 0, telemetry.Invalid(name, "%q is not a positive duration such as 30s or 5m", raw)
	}
	return d, nil
}

// remoteWrite godoc
//
//	@Summary		Receive Prometheus remote_write 1.0 (snappy-compressed protobuf WriteRequest)
//	@Description	Answers 204 once the queue accepted every sample of the request; 400 for a body that cannot be decoded (not to be retried); 415 for another protocol (remote_write 2.0 senders fall back to 1.0); 503 when the queue did not accept the samples in time, so that the sender retries. Staleness markers and series without a UUID label are dropped.
//	@Tags			ingest
//	@Accept			application/x-protobuf
//	@Success		204
//	@Failure		400	{object}	ErrorBody
//	@Failure		415	{object}	ErrorBody
//	@Failure		503	{object}	ErrorBody
//	@Router			/api/v1/write [post]
func (a *API) remoteWrite(c *gin.Context) {
	if err := a.opts.RemoteWrite(c.Request.Context(), c.Request); err != nil {
		if errors.Is(err, telemetry.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", errQueueUnavailable, err)
		}
		writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// targets godoc
//
//	@Summary	The scrape targets of this streamer with their health (streamers that scrape, and mode all)
//	@Tags		ingest
//	@Success	200	{object}	TargetList
//	@Router		/api/v1/targets [get]
func (a *API) targets(c *gin.Context) {
	targets := a.opts.Targets()
	out := TargetList{Data: make([]Target, len(targets)), Count: len(targets)}
	for i, t := range targets {
		out.Data[i] = toTarget(t)
		if t.Health == "up" {
			out.Up++
		}
	}
	c.JSON(http.StatusOK, out)
}
