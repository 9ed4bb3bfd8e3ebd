package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/httpapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

const util = "DCGM_FI_DEV_GPU_UTIL"

// utilAt is the utilisation of GPUs A and B at second i: 60 seconds at 10, 38 at 50, 2 at
// 90, so that the median, p95 and p99 are the same by any definition of a percentile.
func utilAt(i int) float64 {
	switch {
	case i < 60:
		return 10
	case i < 98:
		return 50
	}
	return 90
}

// newFleetAPI serves GPUs A and B on host h1 and C (another model) on h2, a sample a
// second for 100 seconds from t0 — A's from second 50 on held by pod team-a/train — and
// D on h2, which last reported an hour before.
func newFleetAPI(t *testing.T) http.Handler {
	t.Helper()
	gpus := []telemetry.GPU{
		{UUID: "GPU-A", Hostname: "h1", Index: 0, ModelName: "H100", Labels: map[string]string{"rack": "r1"}},
		{UUID: "GPU-B", Hostname: "h1", Index: 1, ModelName: "H100", Labels: map[string]string{"rack": "r1"}},
		{UUID: "GPU-C", Hostname: "h2", Index: 0, ModelName: "A100", Labels: map[string]string{"rack": "r2"}},
		{UUID: "GPU-D", Hostname: "h2", Index: 1, ModelName: "A100", Labels: map[string]string{"rack": "r2"}},
	}
	b := telemetry.Batch{ID: "fleet", GPUs: gpus}
	for i := range 100 {
		at := t0.Add(time.Duration(i) * time.Second)
		for _, g := range gpus[:2] {
			s := telemetry.Sample{GPU: g.UUID, Metric: util, Time: at, Value: utilAt(i)}
			if g.UUID == "GPU-A" && i >= 50 {
				s.Namespace, s.Pod = "team-a", "train"
			}
			b.Samples = append(b.Samples, s)
		}
		b.Samples = append(b.Samples, telemetry.Sample{GPU: "GPU-C", Metric: util, Time: at, Value: 70})
	}
	b.Samples = append(b.Samples, telemetry.Sample{GPU: "GPU-D", Metric: util, Time: t0.Add(-time.Hour), Value: 5})
	return serveBatch(t, b)
}

// serveBatch serves the query and fleet routes over an SQLite store holding b.
func serveBatch(t *testing.T, b telemetry.Batch) http.Handler { return serve(t, b, false, time.Time{}) }

// serveSealed serves b from a store whose downsampled tiers hold it: its windows sealed,
// and its samples before prunedBefore, when given, deleted.
func serveSealed(t *testing.T, b telemetry.Batch, prunedBefore time.Time) http.Handler {
	return serve(t, b, true, prunedBefore)
}

func serve(t *testing.T, b telemetry.Batch, sealed bool, prunedBefore time.Time) http.Handler {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstoretest.SQLiteURL(t), sqlstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	_, err = store.WriteBatch(ctx, b)
	require.NoError(t, err)
	fleet := query.NewFleet(store, store)
	if sealed {
		_, err = store.Seal(ctx)
		require.NoError(t, err)
		fleet = fleet.WithTiers(store)
	}
	if !prunedBefore.IsZero() {
		st, err := store.Prune(ctx, sqlstore.Cutoffs{Raw: prunedBefore})
		require.NoError(t, err)
		require.Positive(t, st.Samples)
	}
	return httpapi.New(httpapi.Options{Query: query.New(store, store, store, store), Fleet: fleet, Logger: slog.New(slog.DiscardHandler)})
}

// over is the query string of [t0, t0+span] with params, pairs of name and value: a window
// end given replaces the default, other names may repeat.
func over(span time.Duration, params ...string) string {
	v := url.Values{"start_time": {t0.Format(time.RFC3339)}, "end_time": {t0.Add(span).Format(time.RFC3339)}}
	for i := 0; i+1 < len(params); i += 2 {
		if name := params[i]; name == "start_time" || name == "end_time" {
			v.Set(name, params[i+1])
		} else {
			v.Add(name, params[i+1])
		}
	}
	return v.Encode()
}

// window is the query string of the fleet's 100 seconds of util, with params.
func window(params ...string) string {
	return over(99*time.Second, append([]string{"metric", util}, params...)...)
}

func TestFleetAggregate(t *testing.T) {
	api := newFleetAPI(t)
	group := func(by string) map[string]httpapi.FleetGroup {
		var out httpapi.FleetAggregate
		require.Equal(t, http.StatusOK, get(t, api, "/api/v1/fleet/aggregate?"+window("by", by), &out).Code, by)
		assert.Equal(t, len(out.Data), out.Count)
		m := map[string]httpapi.FleetGroup{}
		for _, g := range out.Data {
			m[g.Group] = g
		}
		return m
	}
	// Exact figures by hand; percentiles within the sketch's 1 %.
	byHost := group("host")
	require.Len(t, byHost, 2)
	h1 := byHost["h1"]
	assert.Equal(t, 2, h1.Devices)
	assert.EqualValues(t, 200, h1.Samples)
	assert.InDelta(t, 26.8, h1.Avg, 1e-9) // (60×10 + 38×50 + 2×90) / 100
	assert.Equal(t, []float64{10, 90}, []float64{h1.Min, h1.Max})
	for want, got := range map[float64]float64{10: h1.P50, 50: h1.P95, 90: h1.P99} {
		assert.InEpsilon(t, want, got, 0.01)
	}
	h2 := byHost["h2"]
	assert.Equal(t, httpapi.FleetGroup{Group: "h2", Devices: 1, Samples: 100, Avg: 70, Min: 70, Max: 70, P50: 70, P95: 70, P99: 70}, h2,
		"D reported outside the window")

	byPod := group("pod")
	require.Len(t, byPod, 2)
	train := byPod["team-a/train"]
	assert.Equal(t, 1, train.Devices)
	assert.EqualValues(t, 50, train.Samples)
	assert.InDelta(t, 43.6, train.Avg, 1e-9) // (10×10 + 38×50 + 2×90) / 50
	assert.EqualValues(t, 250, byPod[""].Samples, "samples held by no pod")
	assert.Equal(t, 3, byPod[""].Devices)

	assert.Len(t, group("model"), 2)
	assert.Equal(t, 2, group("label:rack")["r1"].Devices)
	assert.Len(t, group("gpu"), 3)
	all := group("")
	assert.EqualValues(t, 300, all[""].Samples)

	var narrow httpapi.FleetAggregate
	get(t, api, "/api/v1/fleet/aggregate?"+window("start_time", t0.Add(98*time.Second).Format(time.RFC3339), "hostname", "h1"), &narrow)
	require.Len(t, narrow.Data, 1)
	assert.EqualValues(t, 4, narrow.Data[0].Samples, "two seconds of two GPUs")
	assert.Equal(t, 90.0, narrow.Data[0].Avg)
}

func TestFleetTop(t *testing.T) {
	api := newFleetAPI(t)
	top := func(params ...string) []string {
		var out httpapi.DeviceValues
		require.Equal(t, http.StatusOK, get(t, api, "/api/v1/fleet/top?"+window(params...), &out).Code, params)
		var got []string
		for _, d := range out.Data {
			require.NotNil(t, d.Value)
			got = append(got, fmt.Sprintf("%s=%g", d.UUID, *d.Value))
		}
		return got
	}
	assert.Equal(t, []string{"GPU-C=70", "GPU-A=26.8"}, top("n", "2"), "ties in listing order")
	assert.Equal(t, []string{"GPU-A=26.8", "GPU-B=26.8", "GPU-C=70"}, top("order", "asc"), "D has no samples in the window")
	assert.Equal(t, []string{"GPU-A=90"}, top("n", "1", "agg", "max"))
	assert.Equal(t, []string{"GPU-C=70"}, top("n", "1", "agg", "min"))
	assert.Equal(t, []string{"GPU-A=100"}, top("n", "1", "agg", "count"))
}

func TestFleetLatest(t *testing.T) {
	api := newFleetAPI(t)
	var out httpapi.DeviceValues
	at := t0.Add(99 * time.Second).Format(time.RFC3339)
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/fleet/latest?metric="+util+"&time="+at, &out).Code)
	require.Equal(t, 4, out.Count, "every device, one without a value")
	var got []string
	for _, d := range out.Data {
		if d.Value == nil {
			got = append(got, d.UUID+"=none")
			continue
		}
		assert.Equal(t, t0.Add(99*time.Second), *d.Timestamp)
		got = append(got, fmt.Sprintf("%s=%g", d.UUID, *d.Value))
	}
	assert.Equal(t, []string{"GPU-A=90", "GPU-B=90", "GPU-C=70", "GPU-D=none"}, got)

	assert.Empty(t, out.NextCursor, "the fleet in one page")

	get(t, api, "/api/v1/fleet/latest?metric="+util+"&lookback=2h&hostname=h2&time="+at, &out)
	require.Len(t, out.Data, 2)
	require.NotNil(t, out.Data[1].Value, "within a longer lookback")
	assert.Equal(t, 5.0, *out.Data[1].Value)

	// Pages of a GPU each: every device once, in listing order, whatever the fleet's size.
	var paged []string
	cursor := ""
	for range 10 {
		out = httpapi.DeviceValues{}
		require.Equal(t, http.StatusOK, get(t, api, "/api/v1/fleet/latest?metric="+util+"&time="+at+"&limit=1&cursor="+cursor, &out).Code)
		require.Len(t, out.Data, 1)
		paged = append(paged, out.Data[0].UUID)
		if cursor = out.NextCursor; cursor == "" {
			break
		}
	}
	assert.Equal(t, []string{"GPU-A", "GPU-B", "GPU-C", "GPU-D"}, paged)
}

func TestFleetBadRequests(t *testing.T) {
	badRequests(t, newFleetAPI(t), map[string]string{
		"/api/v1/fleet/aggregate?by=rack&" + window(): "by",
		"/api/v1/fleet/aggregate?by=label:":           "by",
		"/api/v1/fleet/aggregate":                     "metric",
		"/api/v1/fleet/aggregate?metric=x&start_time=2025-07-19T00:00:00Z&end_time=2025-07-18T00:00:00Z": "end_time",
		"/api/v1/fleet/aggregate?metric=x&end_time=yesterday":                                            "end_time",
		"/api/v1/fleet/top?" + window("n", "0"):                                                          "n",
		"/api/v1/fleet/top?" + window("n", "1001"):                                                       "n",
		"/api/v1/fleet/top?" + window("order", "up"):                                                     "order",
		"/api/v1/fleet/top?" + window("agg", "median"):                                                   "agg",
		"/api/v1/fleet/latest?metric=x&lookback=-1m":                                                     "lookback",
		"/api/v1/fleet/latest?metric=x&lookback=soon":                                                    "lookback",
		"/api/v1/fleet/latest":                                                                           "metric",
		"/api/v1/fleet/latest?metric=x&limit=10001":                                                      "limit",
		"/api/v1/fleet/latest?metric=x&cursor=nope":                                                      "cursor",
	})
}

// badRequests checks that each target is a 400 whose message names its field.
func badRequests(t *testing.T, api http.Handler, fieldOf map[string]string) {
	t.Helper()
	for target, field := range fieldOf {
		var body httpapi.ErrorBody
		assert.Equal(t, http.StatusBadRequest, get(t, api, target, &body).Code, target)
		assert.Contains(t, body.Error.Message, field, target)
	}
}
