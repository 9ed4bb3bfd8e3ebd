package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/httpapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health/healthtest"
)

func TestOutliersRankTheGPUWhoseECCErrorsClimb(t *testing.T) {
	api := serveBatch(t, healthtest.OddOneOut(t0, true))
	var list httpapi.OutlierList
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/fleet/outliers?"+twoHours(), &list).Code)
	require.NotEmpty(t, list.Data)
	first := list.Data[0]
	assert.Equal(t, []string{healthtest.OddGPU, "h1", "sbe_ecc_rate", "errors/s"}, []string{first.UUID, first.Hostname, first.Signal, first.Unit})
	assert.InDelta(t, healthtest.OddSBERate, first.Value, 1e-6)
	assert.InDelta(t, healthtest.OddSBERate/0.001, first.Score, 1e-3, "17,700/s over peers at 0, the floor of 0.001/s as the scale")
	assert.Equal(t, 3.5, list.Threshold)
	assert.Equal(t, len(list.Data), list.Count)

	get(t, api, "/api/v1/fleet/outliers?"+twoHours("signal", "temp_at_power"), &list)
	for _, o := range list.Data {
		assert.Equal(t, "temp_at_power", o.Signal)
	}
	get(t, api, "/api/v1/fleet/outliers?"+twoHours("hostname", "h2"), &list)
	assert.Empty(t, list.Data, "h2's GPUs among themselves")

	healthy := serveBatch(t, healthtest.OddOneOut(t0, false))
	get(t, healthy, "/api/v1/fleet/outliers?"+twoHours(), &list)
	assert.Empty(t, list.Data, "noise is not a fault")
}

func TestOutliersBadRequests(t *testing.T) {
	badRequests(t, newTroubledFleet(t), map[string]string{
		"/api/v1/fleet/outliers?signal=fire":     "signal",
		"/api/v1/fleet/outliers?threshold=high":  "threshold",
		"/api/v1/fleet/outliers?threshold=-1":    "threshold",
		"/api/v1/fleet/outliers?start_time=soon": "start_time",
	})
}
