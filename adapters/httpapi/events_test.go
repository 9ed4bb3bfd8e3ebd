package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/httpapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health/healthtest"
)

// newTroubledFleet serves healthtest.TroubledFleet from t0.
func newTroubledFleet(t *testing.T) http.Handler {
	t.Helper()
	return serveBatch(t, healthtest.TroubledFleet(t0))
}

// twoHours is the query string of the fixture's window, with params.
func twoHours(params ...string) string { return over(2*time.Hour, params...) }

// described lists events as "GPU kind reason start–end" in minutes from t0.
func described(list httpapi.EventList) []string {
	var out []string
	for _, e := range list.Data {
		s := fmt.Sprintf("%s %s %s %v–%v", e.UUID, e.Kind, e.Reason, e.Start.Sub(t0).Minutes(), e.End.Sub(t0).Minutes())
		if e.Ongoing {
			s += " ongoing"
		}
		if e.Pod != "" {
			s += " " + e.Namespace + "/" + e.Pod
		}
		out = append(out, s)
	}
	return out
}

func TestEventsNameThePlantedProblems(t *testing.T) {
	api := newTroubledFleet(t)
	var list httpapi.EventList
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/events?"+twoHours(), &list).Code)
	assert.Equal(t, []string{"GPU-xid xid 79 40–45", "GPU-hot throttle hw_thermal_slowdown 60–75"}, described(list))
	assert.Equal(t, 2, list.Devices)
	assert.Equal(t, 79.0, list.Data[0].Value)
	assert.Equal(t, 10, list.Data[0].Samples, "five minutes at 30 s")
	xid := list.Data[0]
	assert.Equal(t, []string{"hardware", "reboot_node", "GPU has fallen off the bus", "cleared"}, []string{xid.Class, xid.Action, xid.Detail, xid.Resolution})
	assert.Equal(t, 1, xid.Count)
	assert.Equal(t, t0.Add(44*time.Minute+30*time.Second), xid.LastSeen)
	assert.Equal(t, "hardware", list.Data[1].Class, "a throttle reason is classified by who sets it")

	get(t, api, "/api/v1/events?"+twoHours("action", "reboot_node", "action", "isolate"), &list)
	assert.Equal(t, []string{"GPU-xid xid 79 40–45"}, described(list))
	get(t, api, "/api/v1/events?"+twoHours("class", "hardware", "kind", "throttle"), &list)
	assert.Equal(t, []string{"GPU-hot throttle hw_thermal_slowdown 60–75"}, described(list))
	get(t, api, "/api/v1/events?"+twoHours("open", "true"), &list)
	assert.Empty(t, list.Data, "both problems ended within the window")

	get(t, api, "/api/v1/events?"+twoHours("kind", "throttle"), &list)
	assert.Equal(t, []string{"GPU-hot throttle hw_thermal_slowdown 60–75"}, described(list))
	get(t, api, "/api/v1/events?"+twoHours("kind", "ecc_dbe", "kind", "xid", "uuid", "GPU-hot"), &list)
	assert.Empty(t, list.Data)
	// A window ending mid-event leaves it ongoing at the window's last sample.
	get(t, api, "/api/v1/events?start_time="+t0.Format(time.RFC3339)+"&end_time="+t0.Add(42*time.Minute).Format(time.RFC3339), &list)
	assert.Equal(t, []string{"GPU-xid xid 79 40–42 ongoing"}, described(list))
}

func TestIdleNamesTheHeldIdleGPU(t *testing.T) {
	api := newTroubledFleet(t)
	var list httpapi.EventList
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/fleet/idle?"+twoHours("threshold", "5", "for", "30m"), &list).Code)
	assert.Equal(t, []string{"GPU-idle idle allocated 30–90 team-a/notebook"}, described(list),
		"ends where the device goes on unheld")
	require.Len(t, list.Data, 1)
	assert.Equal(t, 1.0, list.Data[0].Value, "mean utilisation")
	get(t, api, "/api/v1/fleet/idle?"+twoHours("for", "61m"), &list)
	assert.Empty(t, list.Data, "an hour idle is not 61 minutes")
	// Under 85 %, GPU-idle is idle throughout, in three stretches of two workloads; the last
	// (29.5 minutes, ongoing) is shorter than for.
	get(t, api, "/api/v1/fleet/idle?"+twoHours("threshold", "85", "for", "30m"), &list)
	assert.Equal(t, []string{"GPU-idle idle unallocated 0–30", "GPU-idle idle allocated 30–90 team-a/notebook"}, described(list))
	get(t, api, "/api/v1/fleet/idle?"+twoHours("threshold", "85", "for", "29m"), &list)
	assert.Len(t, list.Data, 3)
}

func TestEventsBadRequests(t *testing.T) {
	badRequests(t, newTroubledFleet(t), map[string]string{
		"/api/v1/events?kind=fire":          "kind",
		"/api/v1/events?action=replace":     "action",
		"/api/v1/events?class=gpu":          "class",
		"/api/v1/events?open=maybe":         "open",
		"/api/v1/events?start_time=soon":    "start_time",
		"/api/v1/fleet/idle?threshold=0":    "threshold",
		"/api/v1/fleet/idle?threshold=half": "threshold",
		"/api/v1/fleet/idle?for=1ms":        "for",
		"/api/v1/fleet/idle?for=forever":    "for",
	})
}
