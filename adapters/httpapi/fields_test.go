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

func TestFieldsNameWhatEachGPUDoesNotReport(t *testing.T) {
	api := serveBatch(t, healthtest.Coverage(t0))
	var cov httpapi.FieldCoverage
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/fleet/fields?"+twoHours(), &cov).Code)
	gaps := map[string][]string{}
	for _, d := range cov.Devices {
		for _, g := range d.Gaps {
			gaps[d.UUID] = append(gaps[d.UUID], g.Field+" "+g.Status)
		}
	}
	assert.Equal(t, map[string][]string{
		"GPU-nogr":    {"DCGM_FI_PROF_GR_ENGINE_ACTIVE not_reported"},
		"GPU-zerogr":  {"DCGM_FI_PROF_GR_ENGINE_ACTIVE zero_while_busy"},
		"GPU-nolink":  {"DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL zero_unlike_peers"},
		"GPU-nopower": {"DCGM_FI_DEV_POWER_USAGE always_zero"},
	}, gaps, "GPU-idle's GR engine reads 0 because it is idle")

	require.Len(t, cov.Kinds, 1)
	kind := cov.Kinds[0]
	assert.Equal(t, 7, kind.Devices)
	counts := map[string][2]int{}
	for _, f := range kind.Fields {
		counts[f.Field] = [2]int{f.Devices, f.NonZero}
	}
	assert.Equal(t, [2]int{6, 4}, counts["DCGM_FI_PROF_GR_ENGINE_ACTIVE"], "six report it, four read other than 0")
	require.Len(t, cov.Devices, 7)
	ok := cov.Devices[0]
	assert.Equal(t, "GPU-ok1", ok.UUID)
	require.Len(t, ok.Fields, 5)
	assert.Equal(t, int64(240), ok.Fields[0].Samples)
	assert.Equal(t, t0, ok.Fields[0].First)

	badRequests(t, api, map[string]string{"/api/v1/fleet/fields?end_time=later": "end_time"})

	// From the 5-minute tier, once the samples are gone: the same.
	tiered := serveSealed(t, healthtest.Coverage(t0), t0.Add(3*time.Hour))
	var fromTiers httpapi.FieldCoverage
	require.Equal(t, http.StatusOK, get(t, tiered, "/api/v1/fleet/fields?"+twoHours(), &fromTiers).Code)
	assert.Equal(t, cov, fromTiers)
}
