package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/promapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Range functions whose windows are whole buckets of a downsampled tier read the tier and
// answer as the samples do: two days of six GPUs scraped every 10 s (at a jittered
// millisecond, as scrapes are), pods handing a GPU over, one GPU missing scrapes, sealed on
// PostgreSQL; each query asked with max_source_resolution=raw and without.
func TestPromQLReadsTheTiers(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstoretest.PostgresURL(t), sqlstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })

	t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	const ticks = 2 * 8640
	gpus := make([]telemetry.GPU, 6)
	for i := range gpus {
		gpus[i] = telemetry.GPU{UUID: fmt.Sprintf("GPU-tier-%d", i), Hostname: fmt.Sprintf("host-%d", i/3), Index: i % 3,
			Device: fmt.Sprintf("nvidia%d", i%3), ModelName: "NVIDIA H100 80GB HBM3"}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for first := 0; first < ticks; first += 360 { // an hour a batch
		batch := telemetry.Batch{ID: fmt.Sprint("tier-", first), GPUs: gpus}
		for tick := first; tick < first+360; tick++ {
			at := t0.Add(time.Duration(tick)*10*time.Second + 1234*time.Millisecond + time.Duration(rng.IntN(300))*time.Millisecond)
			for gi, g := range gpus {
				if gi == 2 && tick >= 10*360 && tick < 10*360+7 {
					continue // missed scrapes: one 5-minute bucket short
				}
				pod := ""
				if gi == 0 {
					pod = fmt.Sprint("train-", tick/(20*360)) // handed over after 20 hours
				}
				for m, v := range map[string]float64{
					"DCGM_FI_DEV_GPU_UTIL":    float64((tick*7+gi*13)%101) + 0.25,
					"DCGM_FI_DEV_POWER_USAGE": 150 + float64((tick+gi)%50)*3.5,
					"DCGM_FI_DEV_GPU_TEMP":    40 + float64((tick/6+gi)%30),
				} {
					batch.Samples = append(batch.Samples, telemetry.Sample{GPU: g.UUID, Metric: m, Time: at, Value: v, Pod: pod, Namespace: map[bool]string{true: "ml"}[pod != ""]})
				}
			}
		}
		_, err := store.WriteBatch(ctx, batch)
		require.NoError(t, err)
	}
	_, err = store.Seal(ctx)
	require.NoError(t, err)

	api := promapi.New(promapi.Options{Queryable: &promapi.Queryable{Inventory: store, Series: store, Tiers: store}})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	day2 := t0.Add(24 * time.Hour)
	for _, c := range []struct {
		query      string
		start, end time.Time
		step       time.Duration // 0: an instant query at end
		tier       string        // the info the tier's answer carries; "" when the samples answer
	}{
		{`avg by (Hostname) (avg_over_time(DCGM_FI_DEV_GPU_UTIL[1h]))`, t0.Add(time.Hour), day2.Add(24 * time.Hour), time.Hour, "1h"},
		{`avg_over_time(DCGM_FI_DEV_GPU_UTIL[1h])`, t0.Add(time.Hour), day2.Add(24 * time.Hour), time.Hour, "1h"},
		{`sum_over_time(DCGM_FI_DEV_POWER_USAGE[30m])`, day2, day2.Add(6 * time.Hour), 15 * time.Minute, "5m"},
		{`max_over_time(DCGM_FI_DEV_GPU_TEMP[2h])`, t0.Add(2 * time.Hour), day2, time.Hour, "1h"},
		{`min_over_time(DCGM_FI_DEV_GPU_TEMP[5m])`, day2, day2.Add(2 * time.Hour), 5 * time.Minute, "5m"},
		{`last_over_time(DCGM_FI_DEV_POWER_USAGE[1h])`, t0.Add(time.Hour), day2, time.Hour, "1h"},
		// Windows of two hours over GPU 2's short bucket: that GPU is read from its samples.
		{`avg_over_time(DCGM_FI_DEV_GPU_UTIL{UUID="GPU-tier-2"}[2h])`, t0.Add(2 * time.Hour), day2.Add(12 * time.Hour), time.Hour, "1h"},
		{`avg_over_time(DCGM_FI_DEV_GPU_UTIL[2h])`, t0.Add(2 * time.Hour), day2.Add(12 * time.Hour), time.Hour, "1h"},
		{`sum(avg_over_time(DCGM_FI_DEV_POWER_USAGE[1d]))`, day2, day2, 0, "1h"},
		{`avg_over_time(DCGM_FI_DEV_GPU_UTIL[1h] offset 1h)`, day2, day2.Add(3 * time.Hour), time.Hour, "1h"},
		// Not on the tiers' edges, or not a function they hold: the samples.
		{`avg_over_time(DCGM_FI_DEV_GPU_UTIL[1h])`, day2.Add(7 * time.Minute), day2.Add(5 * time.Hour), time.Hour, ""},
		{`avg_over_time(DCGM_FI_DEV_GPU_UTIL[50m])`, day2, day2.Add(5 * time.Hour), time.Hour, "5m"},
		{`avg_over_time(DCGM_FI_DEV_GPU_UTIL[7m])`, day2, day2.Add(5 * time.Hour), time.Hour, ""},
		{`count_over_time(DCGM_FI_DEV_GPU_UTIL[1h])`, day2, day2.Add(5 * time.Hour), time.Hour, ""},
	} {
		params := url.Values{"query": {c.query}}
		path := "/api/v1/query"
		if c.step > 0 {
			path = "/api/v1/query_range"
			params.Set("start", promTime(c.start))
			params.Set("end", promTime(c.end))
			params.Set("step", strconv.Itoa(int(c.step.Seconds())))
		} else {
			params.Set("time", promTime(c.end))
		}
		raw := url.Values{"max_source_resolution": {"raw"}}
		for k, v := range params {
			raw[k] = v
		}
		want, wantInfos := promResultAndInfos(t, srv.URL+path, raw)
		got, infos := promResultAndInfos(t, srv.URL+path, params)
		require.NotEmpty(t, want.series, c.query)
		assertSameResult(t, c.query, want, got)
		assert.Empty(t, wantInfos, "%s: read raw", c.query)
		if c.tier == "" {
			assert.Empty(t, infos, "%s: not from a tier", c.query)
		} else if assert.Len(t, infos, 1, c.query) {
			assert.Contains(t, infos[0], "the "+c.tier+" downsampled tier", c.query)
		}
	}

	// A finer tier when asked for; a bad value named.
	_, infos := promResultAndInfos(t, srv.URL+"/api/v1/query", url.Values{"query": {`avg_over_time(DCGM_FI_DEV_GPU_UTIL[1h])`},
		"time": {promTime(day2)}, "max_source_resolution": {"5m"}})
	require.Len(t, infos, 1)
	assert.Contains(t, infos[0], "the 5m downsampled tier")
	resp, err := http.Get(srv.URL + "/api/v1/query?query=up&max_source_resolution=fine")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// The first day's samples deleted (retention): the tiers answer it as before, the
	// samples warn of what they lack, and averages over unequal buckets say they are not
	// the samples' any more.
	firstDay := func(query, maxRes string) url.Values {
		return url.Values{"query": {query}, "start": {promTime(t0.Add(2 * time.Hour))}, "end": {promTime(day2)}, "step": {"3600"},
			"max_source_resolution": {maxRes}}
	}
	const hourly, uneven = `avg_over_time(DCGM_FI_DEV_GPU_UTIL[1h])`, `avg_over_time(DCGM_FI_DEV_GPU_UTIL{UUID="GPU-tier-2"}[2h])`
	before := promResult(t, srv.URL+"/api/v1/query_range", firstDay(hourly, "auto"))
	rawBefore := promResult(t, srv.URL+"/api/v1/query_range", firstDay(uneven, "raw"))
	_, err = store.Prune(ctx, sqlstore.Cutoffs{Raw: day2, Tiers: []time.Time{{}, {}}})
	require.NoError(t, err)
	after, _, warnings := promResultAndNotes(t, srv.URL+"/api/v1/query_range", firstDay(hourly, "auto"))
	assertSameResult(t, hourly, before, after)
	assert.Empty(t, warnings)
	_, _, warnings = promResultAndNotes(t, srv.URL+"/api/v1/query_range", firstDay(hourly, "raw"))
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "deleted (retention)")
	approx, _, warnings := promResultAndNotes(t, srv.URL+"/api/v1/query_range", firstDay(uneven, "auto"))
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "unequal numbers of samples")
	for k, pts := range rawBefore.series {
		require.Len(t, approx.series[k], len(pts), "every window answered still")
	}
}

// promResultAndInfos is promResult with the answer's infos.
func promResultAndInfos(t *testing.T, endpoint string, params url.Values) (promAnswer, []string) {
	t.Helper()
	a, infos, _ := promResultAndNotes(t, endpoint, params)
	return a, infos
}

// promResultAndNotes is promResult with the answer's infos and warnings.
func promResultAndNotes(t *testing.T, endpoint string, params url.Values) (a promAnswer, infos, warnings []string) {
	t.Helper()
	var body struct{ Infos, Warnings []string }
	getJSONOK(t, endpoint+"?"+params.Encode(), &body)
	return promResult(t, endpoint, params), body.Infos, body.Warnings
}
