package integration

import (
	"encoding/json"
	"os"

	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// The pipeline's PromQL API answers as a real Prometheus does on the same data: Prometheus
// scrapes 31 simulated dcgm-exporters every second and remote-writes to the pipeline; once
// the store holds every sample Prometheus holds, the same queries go to both, at an instant
// before the exporters stopped (after it, Prometheus' staleness markers end its series).
// The engine is Prometheus 3's, Debian's prometheus is 2.42: where their semantics differ —
// rate's extrapolation over a series' first samples, say — the queries stay clear of it,
// their windows starting well after the series do.
func TestPromQLAnswersAsPrometheus(t *testing.T) {
	t.Parallel()
	prometheusBinary(t)
	dbURL := sqlstoretest.PostgresURL(t)
	p := start(t, "--remote-write", "--database-url="+dbURL)
	targets, stopSim := simulator(t, "--csv="+withProfilingFields(t))
	promBase, _ := startPrometheus(t, targets, p.base+"/api/v1/write")
	time.Sleep(30 * time.Second)
	at := time.Now().Add(-2 * time.Second).Truncate(time.Second)
	stopSim()
	time.Sleep(3 * time.Second)
	requireSameAsPrometheus(t, promBase, dbURL, 17, time.Minute)
	at = at.Add(clearOfScrapes(t, promBase, at))

	instant := []string{
		`DCGM_FI_DEV_GPU_TEMP`,
		`DCGM_FI_DEV_GPU_UTIL{Hostname=~".*00[1-3]"}`,
		`avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)`,
		`max by (modelName) (DCGM_FI_DEV_POWER_USAGE)`,
		`count by (modelName) (DCGM_FI_DEV_GPU_TEMP)`,
		`count(DCGM_FI_DEV_GPU_TEMP)`,
		`sum(DCGM_FI_DEV_FB_USED) / sum(DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)`,
		`topk(5, DCGM_FI_DEV_POWER_USAGE)`, // power has decimals: ties, whose pick is arbitrary, are unlikely
		`bottomk(3, DCGM_FI_DEV_POWER_USAGE * 1000)`,
		`max_over_time(DCGM_FI_DEV_POWER_USAGE[10s])`,
		`avg_over_time(DCGM_FI_DEV_GPU_UTIL[15s])`,
		`quantile_over_time(0.9, DCGM_FI_DEV_GPU_TEMP[10s])`,
		`rate(DCGM_FI_DEV_MEM_CLOCK[10s])`,
		`quantile(0.5, DCGM_FI_DEV_GPU_TEMP)`,
		`absent(DCGM_FI_DEV_NO_SUCH_FIELD)`,
		`absent(DCGM_FI_DEV_GPU_TEMP)`,
		`DCGM_FI_DEV_GPU_TEMP{GPU_I_ID!=""}`,
		`DCGM_EXP_XID_ERRORS_COUNT`, // a series a code
		`DCGM_EXP_XID_ERRORS_COUNT{xid="13"}`,
		`sum by (xid) (DCGM_EXP_XID_ERRORS_COUNT)`,
		`DCGM_FI_DEV_GPU_TEMP{xid=""}`,
		`sum by (instance) (DCGM_FI_DEV_POWER_USAGE)`,
	}
	for _, q := range instant {
		params := url.Values{"query": {q}, "time": {promTime(at)}}
		want := promResult(t, promBase+"/api/v1/query", params)
		got := promResult(t, p.base+"/prometheus/api/v1/query", params)
		assertSameResult(t, q, want, got)
	}
	for _, q := range []string{
		`avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)`,
		`DCGM_FI_DEV_GPU_TEMP{Hostname="` + firstHost(t, promBase, at) + `"}`,
		`max_over_time(DCGM_FI_DEV_POWER_USAGE[5s])`,
		`sum(rate(DCGM_FI_DEV_SM_CLOCK[5s]))`,
		`rate(DCGM_FI_DEV_SM_CLOCK[5s])`,
	} {
		for _, step := range []string{"1", "3s", "7"} {
			params := url.Values{"query": {q}, "start": {promTime(at.Add(-12 * time.Second))},
				"end": {promTime(at)}, "step": {step}}
			want := promResult(t, promBase+"/api/v1/query_range", params)
			got := promResult(t, p.base+"/prometheus/api/v1/query_range", params)
			assertSameResult(t, q+" step "+step, want, got)
		}
	}

	// Every expression of NVIDIA's dcgm-exporter dashboard (grafana.com 12239), its variables
	// set as Grafana sets them: All (a regex of every value), and a few hosts and GPUs.
	var hostList struct{ Data []string }
	getJSONOK(t, promBase+"/api/v1/label/Hostname/values?match[]=DCGM_FI_DEV_FB_FREE", &hostList)
	require.Greater(t, len(hostList.Data), 3)
	span := url.Values{"start": {promTime(at.Add(-15 * time.Minute))}, "end": {promTime(at)}}
	for _, vars := range []struct{ hostname, gpu string }{
		{"(" + strings.Join(hostList.Data, "|") + ")", "(0|1|2|3|4|5|6|7)"},
		{".*", ".*"},
		{"(" + hostList.Data[0] + "|" + hostList.Data[2] + ")", "(0|3)"},
	} {
		expand := strings.NewReplacer("$Hostname", vars.hostname, "$gpu", vars.gpu).Replace
		for _, v := range dashboard12239Variables {
			params := url.Values{"match[]": {expand(v.match)}, "start": span["start"], "end": span["end"]}
			var want, got struct{ Data []string }
			getJSONOK(t, promBase+"/api/v1/label/"+v.label+"/values?"+params.Encode(), &want)
			getJSONOK(t, p.base+"/prometheus/api/v1/label/"+v.label+"/values?"+params.Encode(), &got)
			require.NotEmpty(t, want.Data, v.match)
			assert.Equal(t, want.Data, got.Data, "label_values(%s, %s)", expand(v.match), v.label)
		}
		for _, expr := range dashboard12239Panels {
			q := expand(expr)
			params := url.Values{"query": {q}, "time": {promTime(at)}}
			want := promResult(t, promBase+"/api/v1/query", params)
			require.NotEmpty(t, want.series, q)
			assertSameResult(t, q, want, promResult(t, p.base+"/prometheus/api/v1/query", params))
			for _, step := range []string{"1", "5"} {
				params := url.Values{"query": {q}, "start": {promTime(at.Add(-12 * time.Second))},
					"end": {promTime(at)}, "step": {step}}
				assertSameResult(t, q+" step "+step, promResult(t, promBase+"/api/v1/query_range", params),
					promResult(t, p.base+"/prometheus/api/v1/query_range", params))
			}
		}
	}

	// The chart's GPU alerting rules, and expressions of the kind published GPU rule sets
	// use, give the same series and values at each instant: the rules fire alike (their
	// for: clauses wait on the same answers). The simulated fleet has them firing: XID 79,
	// 163 and 162, thermal throttling, correctable ECC errors climbing on one GPU.
	exprs := gpuRuleExprs(t)
	require.GreaterOrEqual(t, len(exprs), 7)
	exprs = append(exprs,
		`DCGM_FI_DEV_GPU_TEMP > 80`,
		`DCGM_FI_DEV_GPU_UTIL > 95`,
		`DCGM_FI_DEV_XID_ERRORS != 0`,
		`increase(DCGM_FI_DEV_ECC_SBE_VOL_TOTAL[10m]) > 0`,
		`topk(20, increase(DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS[30d]))`,
		`(DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)) * 100 > 90`,
		`avg_over_time(DCGM_FI_DEV_GPU_UTIL[10m]) < 5`,
		`count by (Hostname) (DCGM_FI_DEV_XID_ERRORS > 0)`,
	)
	fired := 0
	for _, q := range exprs {
		for _, back := range []time.Duration{0, 3 * time.Second, 7 * time.Second} {
			params := url.Values{"query": {q}, "time": {promTime(at.Add(-back))}}
			want := promResult(t, promBase+"/api/v1/query", params)
			assertSameResult(t, q, want, promResult(t, p.base+"/prometheus/api/v1/query", params))
			if back == 0 && len(want.series) > 0 {
				fired++
			}
		}
	}
	assert.GreaterOrEqual(t, fired, 3, "rules that fire on the simulated fleet")

	// The other routes, and errors in Prometheus' shape.
	for _, path := range []string{"/api/v1/label/Hostname/values", "/api/v1/labels?match[]=DCGM_FI_DEV_GPU_TEMP",
		"/api/v1/label/__name__/values?match[]=" + url.QueryEscape(`{__name__=~"DCGM_.*"}`)} {
		var want, got struct{ Data []string }
		getJSONOK(t, promBase+path, &want)
		getJSONOK(t, p.base+"/prometheus"+path, &got)
		assert.Equal(t, want.Data, got.Data, path)
	}
	var series struct{ Data []map[string]string }
	getJSONOK(t, p.base+"/prometheus/api/v1/series?match[]="+url.QueryEscape(`DCGM_FI_DEV_GPU_TEMP`), &series)
	assert.Len(t, series.Data, 246+7+2, "a series a device, a series a pod of the time-sliced one")
	resp, err := http.PostForm(p.base+"/prometheus/api/v1/query", url.Values{"query": {"sum("}})
	require.NoError(t, err)
	var perr struct{ Status, ErrorType, Error string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&perr))
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "error", perr.Status)
	assert.Equal(t, "bad_data", perr.ErrorType)
	assert.Contains(t, perr.Error, "parse error")
}

// The expressions of the panels of NVIDIA's dcgm-exporter dashboard (grafana.com 12239,
// grafana/dcgm-exporter-dashboard.json in NVIDIA/dcgm-exporter), and the queries of its
// variables, as label_values(match, label).
var (
	dashboard12239Panels = []string{
		`max(DCGM_FI_DEV_GPU_TEMP{Hostname=~"$Hostname", gpu=~"$gpu"}) by (Hostname, gpu, uuid)`,
		`avg(DCGM_FI_DEV_GPU_TEMP{Hostname=~"$Hostname", gpu=~"$gpu"})`,
		`max(DCGM_FI_DEV_POWER_USAGE{Hostname=~"$Hostname", gpu=~"$gpu"}) by (Hostname, gpu, uuid)`,
		`sum(max(DCGM_FI_DEV_POWER_USAGE{Hostname=~"$Hostname", gpu=~"$gpu"}) by (gpu))`,
		`max(DCGM_FI_DEV_SM_CLOCK{Hostname=~"$Hostname", gpu=~"$gpu"} * 1000000) by (Hostname, UUID, gpu)`,
		`max(DCGM_FI_PROF_GR_ENGINE_ACTIVE{Hostname=~"$Hostname", gpu=~"$gpu"}) by (Hostname, gpu, GPU_I_ID, GPU_I_PROFILE)`,
		`max(DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{Hostname=~"$Hostname", gpu=~"$gpu"}) by (Hostname, gpu, GPU_I_ID, GPU_I_PROFILE)`,
		`max(DCGM_FI_DEV_FB_USED{Hostname=~"$Hostname", gpu=~"$gpu"}) by (Hostname, gpu, GPU_I_ID, GPU_I_PROFILE)`,
	}
	dashboard12239Variables = []struct{ match, label string }{
		{`DCGM_FI_DEV_FB_FREE`, "Hostname"},
		{`DCGM_FI_DEV_FB_FREE{Hostname=~"$Hostname"}`, "gpu"},
	}
)

// gpuRuleExprs are the expressions of the chart's gpu-health alerting rules.
func gpuRuleExprs(t *testing.T) []string {
	raw, err := os.ReadFile("../../deploy/helm/telemetry-pipeline/files/prometheus-rules.yml")
	require.NoError(t, err)
	var file struct {
		Groups []struct {
			Name  string
			Rules []struct{ Expr string }
		}
	}
	require.NoError(t, yaml.Unmarshal(raw, &file))
	var out []string
	for _, g := range file.Groups {
		if g.Name == "gpu-health" {
			for _, r := range g.Rules {
				out = append(out, r.Expr)
			}
		}
	}
	return out
}

// withProfilingFields writes the bundled CSV with two profiling fields added, which the
// dashboard charts and the file lacks: each GPU's graphics engine and tensor pipe activity,
// as ratios, from its utilisation.
func withProfilingFields(t *testing.T) string {
	return apptest.WithAddedFields(t, "dcgm-with-profiling.csv", func(util float64) map[string]float64 {
		return map[string]float64{"DCGM_FI_PROF_GR_ENGINE_ACTIVE": util / 100, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": util / 250}
	})
}

// promResult is a query's answer: each series (by its labels) with its values.
type promAnswer struct {
	resultType string
	series     map[string][][2]float64
}

func promResult(t *testing.T, endpoint string, params url.Values) promAnswer {
	t.Helper()
	var body struct {
		Status string
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		}
		Error string
	}
	getJSONOK(t, endpoint+"?"+params.Encode(), &body)
	require.Equal(t, "success", body.Status, "%s %v: %s", endpoint, params, body.Error)
	out := promAnswer{resultType: body.Data.ResultType, series: map[string][][2]float64{}}
	point := func(p [2]any) [2]float64 {
		v, err := strconv.ParseFloat(p[1].(string), 64)
		require.NoError(t, err)
		return [2]float64{p[0].(float64), v}
	}
	switch body.Data.ResultType {
	case "vector":
		var r []struct {
			Metric map[string]string
			Value  [2]any
		}
		require.NoError(t, json.Unmarshal(body.Data.Result, &r))
		for _, s := range r {
			out.series[labelKey(s.Metric)] = [][2]float64{point(s.Value)}
		}
	case "matrix":
		var r []struct {
			Metric map[string]string
			Values [][2]any
		}
		require.NoError(t, json.Unmarshal(body.Data.Result, &r))
		for _, s := range r {
			for _, v := range s.Values {
				out.series[labelKey(s.Metric)] = append(out.series[labelKey(s.Metric)], point(v))
			}
		}
	case "scalar":
		var r [2]any
		require.NoError(t, json.Unmarshal(body.Data.Result, &r))
		out.series[""] = [][2]float64{point(r)}
	}
	return out
}

func labelKey(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+strconv.Quote(v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

func assertSameResult(t *testing.T, query string, want, got promAnswer) {
	t.Helper()
	assert.Equal(t, want.resultType, got.resultType, query)
	if !assert.Equal(t, len(want.series), len(got.series), "%s: series", query) {
		return
	}
	for k, w := range want.series {
		g, ok := got.series[k]
		if !assert.True(t, ok, "%s: series %s missing", query, k) || !assert.Equal(t, len(w), len(g), "%s: points of %s", query, k) {
			continue
		}
		for i := range w {
			assert.Equal(t, w[i][0], g[i][0], "%s: time of %s", query, k)
			if w[i][1] != g[i][1] && !(math.IsNaN(w[i][1]) && math.IsNaN(g[i][1])) {
				assert.InEpsilon(t, w[i][1], g[i][1], 1e-9, "%s: value of %s at %v", query, k, w[i][0])
			}
		}
	}
	if len(want.series) == 0 {
		t.Logf("%s: empty on both", query)
	}
}

func getJSONOK(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v), u)
}

// clearOfScrapes is how far past a whole second to evaluate so that no window's edge falls
// on a sample: Prometheus 2's windows include their start, the engine's (Prometheus 3's)
// do not, and a target scraped every second at the same millisecond past it would be
// counted by one and not the other.
func clearOfScrapes(t *testing.T, promBase string, at time.Time) time.Duration {
	t.Helper()
	taken := map[int64]bool{}
	answer := promResult(t, promBase+"/api/v1/query", url.Values{"query": {"timestamp(DCGM_FI_DEV_GPU_TEMP)"}, "time": {promTime(at)}})
	require.NotEmpty(t, answer.series)
	for _, points := range answer.series {
		taken[int64(math.Round(points[0][1]*1000))%1000] = true
	}
	for ms := int64(500); ms < 1000; ms++ {
		if !taken[ms] {
			return time.Duration(ms) * time.Millisecond
		}
	}
	t.Fatal("every millisecond past the second has a scrape")
	return 0
}

// promTime is t as the query APIs take it: Unix seconds, to the millisecond.
func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// firstHost is a host Prometheus knows at the instant.
func firstHost(t *testing.T, promBase string, at time.Time) string {
	var body struct{ Data []string }
	getJSONOK(t, promBase+"/api/v1/label/Hostname/values", &body)
	require.NotEmpty(t, body.Data)
	return body.Data[0]
}

// Bad requests to the PromQL API get 4xx in Prometheus' error shape, naming the problem;
// good ones over the bundled file answer on the first try (its timestamps are from 2025).
func TestPromQLOnTheBundledDataAndBadRequests(t *testing.T) {
	p := start(t, "--database-url="+sqlstoretest.SQLiteURL(t), "--loop=false", "--timestamps=csv", "--interval=0",
		"--promql-max-samples=2000")
	p.waitForSamples(t, 2470)
	at := "2025-07-18T20:45:00Z" // within the lookback of the file's scrapes (20:42:34–37)
	var count struct {
		Data struct {
			Result []struct{ Value [2]any }
		}
	}
	require.Equal(t, http.StatusOK, p.get(t, "/prometheus/api/v1/query?query=count(DCGM_FI_DEV_GPU_TEMP)&time="+at, &count))
	require.Len(t, count.Data.Result, 1)
	assert.Equal(t, "247", count.Data.Result[0].Value[1], "a series a GPU, all 247 in the file")

	// A subquery without a step (production dashboards write them) takes the 1m default, as
	// Prometheus' global evaluation interval: the same answer as the step written out.
	var noStep, minute struct {
		Status string
		Data   struct{ Result []struct{ Value [2]any } }
	}
	require.Equal(t, http.StatusOK, p.get(t, "/prometheus/api/v1/query?"+url.Values{"query": {`avg(avg_over_time(DCGM_FI_DEV_GPU_TEMP[10m:]))`}, "time": {at}}.Encode(), &noStep))
	require.Equal(t, http.StatusOK, p.get(t, "/prometheus/api/v1/query?"+url.Values{"query": {`avg(avg_over_time(DCGM_FI_DEV_GPU_TEMP[10m:1m]))`}, "time": {at}}.Encode(), &minute))
	require.Len(t, noStep.Data.Result, 1)
	assert.Equal(t, minute.Data.Result, noStep.Data.Result)

	for path, want := range map[string]string{
		"/prometheus/api/v1/query?query=sum(":                                                         "parse error",
		"/prometheus/api/v1/query?query=up&time=yesterday":                                            `invalid parameter "time"`,
		"/prometheus/api/v1/query_range?query=up&start=0&end=10":                                      `invalid parameter "step"`,
		"/prometheus/api/v1/query_range?query=up&start=10&end=0&step=1":                               "end timestamp must not be before start time",
		"/prometheus/api/v1/query_range?query=up&start=0&end=100000&step=1":                           "exceeded maximum resolution",
		"/prometheus/api/v1/series":                                                                   "no match[] parameter provided",
		"/prometheus/api/v1/series?match[]=" + url.QueryEscape("{"):                                   "parse error",
		"/prometheus/api/v1/query?query=" + url.QueryEscape(`DCGM_FI_DEV_GPU_TEMP[5m]`) + "&time=x":   `invalid parameter "time"`,
		"/prometheus/api/v1/query?query=" + strings.Repeat("1%2B", 10000) + "1":                       "the query is 20001 bytes long, more than the 16384",
		"/prometheus/api/v1/query?query=" + strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200): "nests more than 128 expressions deep",
		"/prometheus/api/v1/query?query=" + strings.Repeat("1%2B", 3000) + "1":                        "nests more than 128 expressions deep",
	} {
		var body struct{ Status, ErrorType, Error string }
		assert.Equal(t, http.StatusBadRequest, p.get(t, path, &body), path)
		assert.Equal(t, "error", body.Status, path)
		assert.Equal(t, "bad_data", body.ErrorType, path)
		assert.Contains(t, body.Error, want, path)
	}
	// A query reading more samples than --promql-max-samples stops reading there, as
	// Prometheus stops one evaluating past its --query.max-samples.
	var tooMany struct{ Status, ErrorType, Error string }
	assert.Equal(t, http.StatusUnprocessableEntity, p.get(t, "/prometheus/api/v1/query?"+url.Values{"query": {`count({__name__=~"DCGM_.*"})`}, "time": {at}}.Encode(), &tooMany))
	assert.Equal(t, "execution", tooMany.ErrorType)
	assert.Contains(t, tooMany.Error, "query processing would load too many samples into memory in reading from the store")

	// Label values read the last hour when no start is named: the file's 2025 samples then.
	var hosts struct{ Data []string }
	require.Equal(t, http.StatusOK, p.get(t, "/prometheus/api/v1/label/Hostname/values?match[]=DCGM_FI_DEV_GPU_TEMP", &hosts))
	assert.Empty(t, hosts.Data, "no sample within the last hour")
	require.Equal(t, http.StatusOK, p.get(t, "/prometheus/api/v1/label/Hostname/values?match[]=DCGM_FI_DEV_GPU_TEMP&start=2025-07-18T00:00:00Z&end="+at, &hosts))
	assert.Len(t, hosts.Data, 31)
	// Reading labels keeps no sample: every one of the 2,470, past the limit of 2,000, is read.
	require.Equal(t, http.StatusOK, p.get(t, "/prometheus/api/v1/label/Hostname/values?start=2025-07-18T00:00:00Z&end="+at, &hosts))
	assert.Len(t, hosts.Data, 31)
	var series struct{ Data []map[string]string }
	require.Equal(t, http.StatusOK, p.get(t, "/prometheus/api/v1/series?match[]="+url.QueryEscape(`{__name__=~"DCGM_.*"}`)+"&start=2025-07-18T00:00:00Z&end="+at, &series))
	assert.Len(t, series.Data, 2470, "a series a GPU and metric")

	var body struct{ Status, ErrorType, Error string }
	assert.Equal(t, http.StatusNotFound, p.get(t, "/prometheus/api/v1/nope", &body))
	assert.Equal(t, "not_found", body.ErrorType)
	req, err := http.NewRequest(http.MethodDelete, p.base+"/prometheus/api/v1/query?query=up", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "as Prometheus answers")
}

// A GPU first stored after a query — the API having read the fleet's devices for it —
// answers PromQL within the second its catalog is kept.
func TestPromQLFindsANewGPUWithinASecond(t *testing.T) {
	p := start(t, "--database-url="+sqlstoretest.SQLiteURL(t), "--remote-write")
	at := time.Now().Truncate(time.Second)
	count := func() string {
		var body struct {
			Data struct {
				Result []struct{ Value [2]any }
			}
		}
		require.Equal(t, http.StatusOK, p.get(t, "/prometheus/api/v1/query?"+url.Values{"query": {"count(DCGM_FI_DEV_GPU_TEMP)"},
			"time": {promTime(at)}}.Encode(), &body))
		if len(body.Data.Result) == 0 {
			return "0"
		}
		return body.Data.Result[0].Value[1].(string)
	}
	for i, uuid := range []string{"GPU-new-a", "GPU-new-b"} {
		status, _ := call(t, http.DefaultClient, "POST", p.base+"/api/v1/write", "", remoteWriteBody(t, uuid, at), remoteWriteHeader)
		require.Equal(t, http.StatusNoContent, status)
		p.waitForSamples(t, int64(i+1))
		stored := time.Now()
		want := strconv.Itoa(i + 1)
		require.Eventually(t, func() bool { return count() == want }, 3*time.Second, 50*time.Millisecond, "%s counted", uuid)
		assert.Less(t, time.Since(stored), 1500*time.Millisecond, "%s counted within the catalog's second", uuid)
	}
}
