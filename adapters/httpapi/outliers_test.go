package httpapi_test

import (
	"net/http"
	"testing"
	"time"

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

// Once the samples are gone, outliers are measured from the 5-minute tier: the same GPUs
// stand out for the same signals, the planted one first at its rate.
func TestOutliersOverTheTiers(t *testing.T) {
	var fromSamples, fromTiers httpapi.OutlierList
	get(t, serveBatch(t, healthtest.OddOneOut(t0, true)), "/api/v1/fleet/outliers?"+twoHours(), &fromSamples)
	assert.Equal(t, "raw", fromSamples.Resolution)
	gone := t0.Add(3 * time.Hour)
	require.Equal(t, http.StatusOK, get(t, serveSealed(t, healthtest.OddOneOut(t0, true), gone), "/api/v1/fleet/outliers?"+twoHours(), &fromTiers).Code)
	assert.Equal(t, "5m", fromTiers.Resolution)
	require.NotEmpty(t, fromTiers.Data)
	first := fromTiers.Data[0]
	assert.Equal(t, []string{healthtest.OddGPU, "sbe_ecc_rate"}, []string{first.UUID, first.Signal})
	assert.InEpsilon(t, healthtest.OddSBERate, first.Value, 1e-3, "the counter's increase between the first and last buckets' last samples")
	standOut := func(l httpapi.OutlierList) []string {
		var out []string
		for _, o := range l.Data {
			out = append(out, o.UUID+" "+o.Signal)
		}
		return out
	}
	assert.ElementsMatch(t, standOut(fromSamples), standOut(fromTiers))

	var healthy httpapi.OutlierList
	get(t, serveSealed(t, healthtest.OddOneOut(t0, false), gone), "/api/v1/fleet/outliers?"+twoHours(), &healthy)
	assert.Equal(t, "5m", healthy.Resolution)
	assert.Empty(t, healthy.Data, "noise is not a fault")
}

func TestOutliersBadRequests(t *testing.T) {
	badRequests(t, newTroubledFleet(t), map[string]string{
		"/api/v1/fleet/outliers?signal=fire":     "signal",
		"/api/v1/fleet/outliers?threshold=high":  "threshold",
		"/api/v1/fleet/outliers?threshold=-1":    "threshold",
		"/api/v1/fleet/outliers?start_time=soon": "start_time",
	})
}
