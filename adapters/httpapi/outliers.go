package httpapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// fleetOutliers godoc
//
//	@Summary		GPUs that stand out of their peers: climbing ECC errors, XIDs, throttling, remapped rows, PCIe replays, heat
//	@Description	Each device's signals over [start_time, end_time] (default: the day before now) — sbe_ecc_rate (correctable ECC errors a second, DCGM_FI_DEV_ECC_SBE_VOL_TOTAL or _AGG_TOTAL), xid_errors (XID codes reported), hw_throttle_fraction (share of the time clocks were slowed by hardware: slowdown, thermal, power brake), remapped_rows (rows remapped), pcie_replay_rate (PCIe replays a second), temp_at_power (°C above the line of its model's temperature on power) — ranked against its peers: the GPUs of its model, of its host, and of each label given (a rack, say), each group of 4 devices or more that report the signal (16 for the temperature). The score is how far above the group's median a value is, in robust standard deviations (1.4826 × the median absolute deviation, never under the signal's floor, so that peers all at 0 do not make the first error infinitely odd); a device is listed once a signal, with the group it stands out of most, when its score passes threshold. Highest score first. MIG instances are left out: the errors are their GPU's. A window reaching back before the oldest sample kept is measured from the finest downsampled tier, in whole buckets (resolution says which): counters and the XID gauge from each bucket's last sample, throttling from the reasons each bucket ended with, power and temperature as exact means.
//	@Tags			fleet
//	@Produce		json
//	@Param			signal		query		[]string	false	"only these signals (repeat the parameter)"							collectionFormat(multi)	Enums(sbe_ecc_rate, xid_errors, hw_throttle_fraction, remapped_rows, pcie_replay_rate, temp_at_power)
//	@Param			label		query		[]string	false	"also group devices by this label of theirs (repeat the parameter)"	collectionFormat(multi)
//	@Param			threshold	query		number		false	"the score above which a device is listed"							default(3.5)
//	@Param			hostname	query		string		false	"only the GPUs of this host"
//	@Param			model		query		string		false	"only the GPUs of this model"
//	@Param			start_time	query		string		false	"RFC 3339 time or Unix seconds, inclusive (default: a day before end_time)"
//	@Param			end_time	query		string		false	"RFC 3339 time or Unix seconds, inclusive (default: now)"
//	@Success		200			{object}	OutlierList
//	@Failure		400			{object}	ErrorBody
//	@Failure		503			{object}	ErrorBody
//	@Router			/api/v1/fleet/outliers [get]
func (a *API) fleetOutliers(c *gin.Context) {
	fq, err := fleetQuery(c, defaultEventWindow)
	if err != nil {
		writeError(c, err)
		return
	}
	q := telemetry.OutlierQuery{Range: fq.Range, Hostname: fq.Hostname, Model: fq.Model, Signals: c.QueryArray("signal"),
		Labels: c.QueryArray("label")}
	if q.Threshold, err = numberParam(c, "threshold", health.DefaultOutlierScore); err != nil {
		writeError(c, err)
		return
	}
	report, err := a.opts.Fleet.Outliers(c.Request.Context(), q)
	if err != nil {
		writeError(c, err)
		return
	}
	out := OutlierList{StartTime: fq.Range.Start, EndTime: fq.Range.End, Threshold: q.Threshold, Data: make([]Outlier, len(report.Outliers)),
		Count: len(report.Outliers), Resolution: resolutionText(report.Step)}
	for i, o := range report.Outliers {
		out.Data[i] = Outlier{UUID: o.GPU.UUID, Hostname: o.GPU.Hostname, GPUIndex: o.GPU.Index, ModelName: o.GPU.ModelName,
			Signal: o.Signal, Unit: health.Units[o.Signal], Value: o.Value, Score: o.Score, Group: o.Group, Peer: o.Peer,
			Peers: o.Peers, Median: o.Median}
	}
	c.JSON(http.StatusOK, out)
}

// Outlier is a GPU whose signal stands out of a group of its peers.
type Outlier struct {
	UUID      string  `json:"uuid" example:"GPU-5fd4f087-86f3-7a43-b711-4771313afc50"`
	Hostname  string  `json:"hostname" example:"node-1"`
	GPUIndex  int     `json:"gpu_index" example:"3"`
	ModelName string  `json:"model_name" example:"NVIDIA H100 80GB HBM3"`
	Signal    string  `json:"signal" example:"sbe_ecc_rate"`
	Unit      string  `json:"unit" example:"errors/s"`
	Value     float64 `json:"value" example:"17700"`
	// Score is how far above the peers' median the value is, in robust standard deviations.
	Score float64 `json:"score" example:"17700000"`
	// Group is the peers it stands out of most (model, host, label:<name>), Peer their name
	// (the model, the host, the label's value), Peers how many they are (this GPU included)
	// and Median their median value.
	Group  string  `json:"group" example:"model"`
	Peer   string  `json:"peer" example:"NVIDIA H100 80GB HBM3"`
	Peers  int     `json:"peers" example:"25"`
	Median float64 `json:"median" example:"0"`
}

// OutlierList is the answer to GET /api/v1/fleet/outliers, highest score first.
type OutlierList struct {
	StartTime time.Time `json:"start_time" example:"2025-07-17T20:42:34Z"`
	EndTime   time.Time `json:"end_time" example:"2025-07-18T20:42:34Z"`
	Threshold float64   `json:"threshold" example:"3.5"`
	// Resolution is what the signals were measured from: raw (the samples), or the step of
	// the downsampled tier ("5m").
	Resolution string    `json:"resolution" example:"raw"`
	Data       []Outlier `json:"data"`
	Count      int       `json:"count" example:"1"`
}
