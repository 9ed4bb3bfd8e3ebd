package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// defaultEventWindow is the window of an event listing that names no start.
const defaultEventWindow = 24 * time.Hour

// events godoc
//
//	@Summary		Health events: XID errors, ECC errors, row remapping, clock throttling, PCIe and NVLink errors
//	@Description	Spans in which a device reported an XID error (DCGM_FI_DEV_XID_ERRORS non-zero; reason: the code), counted ECC errors (a rise of DCGM_FI_DEV_ECC_SBE_VOL_TOTAL, _DBE_VOL_TOTAL, or of the _AGG_TOTAL counters where the volatile ones are not reported; value and count: how many), had rows to remap (DCGM_FI_DEV_ROW_REMAP_PENDING) or failed to (DCGM_FI_DEV_ROW_REMAP_FAILURE), had its clocks throttled (a bit of DCGM_FI_DEV_CLOCK_THROTTLE_REASONS or DCGM_FI_DEV_CLOCKS_EVENT_REASONS; reason: its name), retried PCIe packets (DCGM_FI_DEV_PCIE_REPLAY_COUNTER) or counted NVLink errors (DCGM_FI_DEV_NVLINK_*_ERROR_COUNT_TOTAL), within [start_time, end_time] (default: the day before now), by start. Each says what failed (class) and what to do (action), from NVIDIA's XID catalog as shipped or as --xid-catalog amends it, and from the device's row remap state for memory errors (a remap pending asks for a reset, a failed one to take the GPU out of service); and how it ended (resolution), when its samples say. Read off the stored samples when asked.
//	@Tags			fleet
//	@Produce		json
//	@Param			kind		query		[]string	false	"only these kinds (repeat the parameter)"						collectionFormat(multi)	Enums(xid, ecc_sbe, ecc_dbe, row_remap_failure, row_remap_pending, throttle, pcie_replay, nvlink_errors)
//	@Param			action		query		[]string	false	"only events asking for these actions (repeat the parameter)"	collectionFormat(multi)	Enums(none, restart_app, reset_gpu, reboot_node, isolate)
//	@Param			class		query		[]string	false	"only these classes (repeat the parameter)"						collectionFormat(multi)	Enums(app, driver, hardware)
//	@Param			open		query		bool		false	"only events still going on at the end of the window"
//	@Param			uuid		query		string		false	"only this GPU (and its MIG instances)"
//	@Param			hostname	query		string		false	"only the GPUs of this host"
//	@Param			model		query		string		false	"only the GPUs of this model"
//	@Param			start_time	query		string		false	"RFC 3339 time or Unix seconds, inclusive (default: a day before end_time)"
//	@Param			end_time	query		string		false	"RFC 3339 time or Unix seconds, inclusive (default: now)"
//	@Success		200			{object}	EventList
//	@Failure		400			{object}	ErrorBody
//	@Failure		503			{object}	ErrorBody
//	@Router			/api/v1/events [get]
func (a *API) events(c *gin.Context) {
	fq, err := fleetQuery(c, defaultEventWindow)
	if err != nil {
		writeError(c, err)
		return
	}
	q := telemetry.EventQuery{Range: fq.Range, GPU: c.Query("uuid"), Hostname: fq.Hostname, Model: fq.Model,
		Kinds: c.QueryArray("kind"), Actions: c.QueryArray("action"), Classes: c.QueryArray("class")}
	if raw, ok := c.GetQuery("open"); ok {
		if q.Open, err = strconv.ParseBool(raw); err != nil {
			writeError(c, telemetry.Invalid("open", "%q is not true or false", raw))
			return
		}
	}
	events, err := a.opts.Fleet.Events(c.Request.Context(), q)
	if err != nil {
		writeError(c, err)
		return
	}
	writeEvents(c, fq.Range, events)
}

// fleetIdle godoc
//
//	@Summary		Idle GPUs: spans of low utilisation, allocated or not
//	@Description	Spans of [start_time, end_time] (default: the day before now) in which a device's DCGM_FI_DEV_GPU_UTIL stayed under threshold for at least for, by start. reason is allocated when a pod held the device (the expensive case), else unallocated; value is the mean utilisation in the span.
//	@Tags			fleet
//	@Produce		json
//	@Param			threshold	query		number	false	"utilisation under which a device is idle, in %"	default(5)
//	@Param			for			query		string	false	"how long it must stay under"						default(30m)
//	@Param			hostname	query		string	false	"only the GPUs of this host"
//	@Param			model		query		string	false	"only the GPUs of this model"
//	@Param			start_time	query		string	false	"RFC 3339 time or Unix seconds, inclusive (default: a day before end_time)"
//	@Param			end_time	query		string	false	"RFC 3339 time or Unix seconds, inclusive (default: now)"
//	@Success		200			{object}	EventList
//	@Failure		400			{object}	ErrorBody
//	@Failure		503			{object}	ErrorBody
//	@Router			/api/v1/fleet/idle [get]
func (a *API) fleetIdle(c *gin.Context) {
	fq, err := fleetQuery(c, defaultEventWindow)
	if err != nil {
		writeError(c, err)
		return
	}
	q := telemetry.IdleQuery{Range: fq.Range, Hostname: fq.Hostname, Model: fq.Model, For: 30 * time.Minute}
	if q.Threshold, err = numberParam(c, "threshold", 5); err != nil {
		writeError(c, err)
		return
	}
	if q.For, err = durationParam(c, "for", q.For); err != nil {
		writeError(c, err)
		return
	}
	events, err := a.opts.Fleet.Idle(c.Request.Context(), q)
	if err != nil {
		writeError(c, err)
		return
	}
	writeEvents(c, fq.Range, events)
}

func writeEvents(c *gin.Context, r telemetry.TimeRange, events []telemetry.Event) {
	out := EventList{StartTime: r.Start, EndTime: r.End, Data: make([]Event, len(events)), Count: len(events)}
	devices := map[string]bool{}
	for i, e := range events {
		out.Data[i] = toEvent(e)
		devices[e.Key()] = true
	}
	out.Devices = len(devices)
	c.JSON(http.StatusOK, out)
}
