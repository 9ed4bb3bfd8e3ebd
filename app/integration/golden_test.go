package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/httpapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// exporterFixtures are the outputs served as exporters in the golden test
// (testdata/exporters, sources in its SOURCES.md): two real ones and the quirks of real
// clusters written in dcgm-exporter's format.
var exporterFixtures = []string{"l4-kops.txt", "grid-a100-vgpu.txt", "a800-mig-dcp.txt", badLineFixture,
	"time-sliced.txt", "relabelled-no-uuid.txt", "mixed-lowercase-hostname.txt"}

const (
	badLineFixture = "a800-mig-dcp-bad-line.txt"
	cleanTwin      = "the bad-line exporter without its bad line"
)

// The pipeline's scraper and Debian's Prometheus scrape the same real and quirky exporters
// at once. For each target the pipeline stores the series Prometheus stores, with the same
// labels (a lowercase hostname kept, no UUID invented, err_code on XID only, a series per
// pod of a time-sliced GPU) and values, and about as many samples; the one difference: the
// target with a line that does not parse keeps every other sample, where Prometheus keeps
// none (compared with the same exporter without the line). Every expression of NVIDIA's
// dashboard, and subqueries without a step, answer as Prometheus does, instant and range.
func TestGoldenRealExportersAsPrometheus(t *testing.T) {
	t.Parallel()
	prometheusBinary(t)
	targets := map[string]string{} // fixture → host:port
	serve := func(name string, body []byte) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			_, _ = w.Write(body)
		}))
		t.Cleanup(srv.Close)
		targets[name] = strings.TrimPrefix(srv.URL, "http://")
	}
	var list, clean []string
	for _, name := range exporterFixtures {
		body, err := os.ReadFile(filepath.Join("testdata", "exporters", name))
		require.NoError(t, err)
		serve(name, body)
		list = append(list, targets[name])
		if name != badLineFixture {
			clean = append(clean, targets[name])
			continue
		}
		var kept []string // its twin without the bad line, for Prometheus only
		for line := range strings.SplitSeq(string(body), "\n") {
			if !strings.Contains(line, "ERROR - FAILED TO CONVERT TO STRING") {
				kept = append(kept, line)
			}
		}
		serve(cleanTwin, []byte(strings.Join(kept, "\n")))
	}
	p := start(t, "--database-url="+sqlstoretest.PostgresURL(t), "--scrape-targets="+strings.Join(list, ","),
		"--scrape-interval=1s", "--scrape-job=dcgm", "--promql-subquery-step=5s")
	// Prometheus scrapes the bad-line exporter as job dcgm-bad (each scrape fails), and its
	// twin as the pipeline sees it: job dcgm, the bad one's instance.
	promBase, _ := runPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 5s
scrape_configs:
  - job_name: dcgm
    static_configs:
      - targets: [%s]
      - targets: [%s]
        labels: {instance: %q}
  - job_name: dcgm-bad
    static_configs: [{targets: [%s]}]
`, strings.Join(clean, ", "), targets[cleanTwin], targets[badLineFixture], targets[badLineFixture]))

	// Both hold every target's series before the compared span begins.
	dcgm := func(instance string) string { return `{__name__=~"DCGM_.+",instance="` + instance + `"}` }
	count := func(base, query string) int {
		return len(promResult(t, base+"/api/v1/query", url.Values{"query": {query}}).series)
	}
	require.Eventually(t, func() bool {
		for _, name := range exporterFixtures {
			n := count(promBase, dcgm(targets[name])) // of the bad one: its twin's
			if n == 0 || count(p.base+"/prometheus", dcgm(targets[name])) != n {
				return false
			}
		}
		return true
	}, 30*time.Second, 200*time.Millisecond, "both scrape every target")
	begin := time.Now()
	time.Sleep(16 * time.Second)
	at := time.Now().Truncate(time.Second).Add(-500 * time.Millisecond)
	instant := func(q string) url.Values { return url.Values{"query": {q}, "time": {promTime(at)}} }
	ours, theirs := p.base+"/prometheus/api/v1/query", promBase+"/api/v1/query"

	down := promResult(t, theirs, instant(`up{job="dcgm-bad"}`))
	require.Len(t, down.series, 1)
	for _, v := range down.series {
		assert.Equal(t, 0.0, v[0][1], "Prometheus fails every scrape of the exporter with a bad line")
	}
	assert.Empty(t, promResult(t, theirs, instant(`{job="dcgm-bad",__name__=~"DCGM_.+"}`)).series, "and keeps none of its samples")

	// Per target: the same series, labels and values; about as many samples, family by
	// family (ten in 10 s of scrapes every second, give or take one).
	for _, name := range exporterFixtures {
		instance := targets[name]
		expected := promResult(t, theirs, instant(dcgm(instance)))
		require.NotEmpty(t, expected.series, name)
		assertSameResult(t, name, expected, promResult(t, ours, instant(dcgm(instance))))
		var families struct{ Data []string }
		getJSONOK(t, promBase+"/api/v1/label/__name__/values?"+url.Values{"match[]": {dcgm(instance)}}.Encode(), &families)
		require.NotEmpty(t, families.Data, name)
		for _, family := range families.Data {
			q := instant(`count_over_time(` + family + `{instance="` + instance + `"}[10s])`)
			want, got := promResult(t, theirs, q), promResult(t, ours, q)
			assert.Equal(t, len(want.series), len(got.series), "%s: series of %s", name, family)
			for k, v := range want.series {
				if assert.Contains(t, got.series, k, "%s: %s", name, family) {
					assert.InDelta(t, v[0][1], got.series[k][0][1], 1, "%s: samples of %s %s", name, family, k)
				}
			}
		}
	}

	// The targets' own series, as Prometheus records them (the bad-line target up, unlike
	// in Prometheus: compared with its twin, which Prometheus labels as it).
	for _, q := range []string{`up{job="dcgm"}`, `scrape_samples_scraped{job="dcgm"}`, `count(scrape_duration_seconds{job="dcgm"})`,
		`absent(up{job="dcgm"})`} {
		assertSameResult(t, q, promResult(t, theirs, instant(q)), promResult(t, ours, instant(q)))
	}

	// Labels as sent.
	lower := promResult(t, ours, instant(`DCGM_FI_DEV_GPU_TEMP{hostname="node-mixed-02"}`))
	assert.Len(t, lower.series, 2, "hostname stays lowercase")
	assert.Empty(t, promResult(t, ours, instant(`DCGM_FI_DEV_GPU_TEMP{instance="`+targets["relabelled-no-uuid.txt"]+`",UUID!=""}`)).series,
		"no UUID invented")
	assert.Len(t, promResult(t, ours, instant(`DCGM_FI_DEV_GPU_UTIL{UUID="GPU-0d1e2f30-4152-6374-8596-a7b8c9d0e1f2"}`)).series, 3,
		"a time-sliced GPU: a series a pod")
	assert.Len(t, promResult(t, ours, instant(`{err_code="43"}`)).series, 2, "err_code on the XID series only (of both A800 targets)")

	// Every expression of the official dashboard, its variables as Grafana sets them, and
	// subqueries without a step (5s here, Prometheus' evaluation_interval).
	var hosts struct{ Data []string }
	getJSONOK(t, promBase+"/api/v1/label/Hostname/values?match[]=DCGM_FI_DEV_FB_FREE", &hosts)
	require.NotEmpty(t, hosts.Data)
	from := begin.Add(11 * time.Second) // clear of the 10s subqueries reaching before both had samples
	for _, vars := range []struct{ hostname, gpu string }{
		{"(" + strings.Join(hosts.Data, "|") + ")", "(0|1)"},
		{".*", ".*"},
	} {
		expand := strings.NewReplacer("$Hostname", vars.hostname, "$gpu", vars.gpu).Replace
		for _, v := range dashboard12239Variables {
			params := url.Values{"match[]": {expand(v.match)}}.Encode()
			var want, got struct{ Data []string }
			getJSONOK(t, promBase+"/api/v1/label/"+v.label+"/values?"+params, &want)
			getJSONOK(t, p.base+"/prometheus/api/v1/label/"+v.label+"/values?"+params, &got)
			assert.Equal(t, want.Data, got.Data, "label_values(%s, %s)", expand(v.match), v.label)
		}
		for _, expr := range append(slices.Clone(dashboard12239Panels),
			`avg_over_time(DCGM_FI_DEV_GPU_TEMP{Hostname=~"$Hostname"}[10s:])`,
			`max by (Hostname) (max_over_time(DCGM_FI_DEV_POWER_USAGE[10s:]))`,
			`quantile(0.9, avg_over_time(DCGM_FI_DEV_GPU_UTIL[10s:]))`) {
			q := expand(expr)
			want := promResult(t, theirs, instant(q))
			require.NotEmpty(t, want.series, q)
			assertSameResult(t, q, want, promResult(t, ours, instant(q)))
			for _, step := range []string{"1", "5"} {
				params := url.Values{"query": {q}, "start": {promTime(from)}, "end": {promTime(at)}, "step": {step}}
				assertSameResult(t, q+" step "+step, promResult(t, promBase+"/api/v1/query_range", params),
					promResult(t, p.base+"/prometheus/api/v1/query_range", params))
			}
		}
	}

	// The bad line is counted and named, the target up.
	var tl httpapi.TargetList
	require.Equal(t, http.StatusOK, p.get(t, "/api/v1/targets", &tl))
	assert.Equal(t, len(exporterFixtures), tl.Up, "every target up")
	for _, tg := range tl.Data {
		if tg.ScrapeURL != "http://"+targets[badLineFixture]+"/metrics" {
			assert.Nil(t, tg.FirstBadLine, tg.ScrapeURL)
			continue
		}
		assert.Equal(t, map[string]int{"line": 1}, tg.DroppedBy)
		require.NotNil(t, tg.FirstBadLine)
		assert.Equal(t, 26, tg.FirstBadLine.Number)
		assert.Contains(t, tg.FirstBadLine.Text, "ERROR - FAILED TO CONVERT TO STRING")
		assert.Equal(t, 30, tg.SamplesPerScrape, "every other sample of the scrape")
	}
}

// A pod replaced on a GPU (its series leave the exposition, a new pod's come) and a target
// that stops: within one scrape interval count() answers as Prometheus does, whose
// staleness markers end the old series, through the built-in scraper and through
// remote_write, instead of counting them for the 5-minute lookback.
func TestReplacedPodAndStoppedTargetEndTheirSeriesAsPrometheus(t *testing.T) {
	t.Parallel()
	prometheusBinary(t)
	var pod atomic.Value
	pod.Store("worker-a")
	exporter := func(node string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			for g := range 3 {
				fmt.Fprintf(w, "DCGM_FI_DEV_GPU_UTIL{gpu=\"%d\",UUID=\"GPU-%s-%d\",Hostname=%q,pod=%q,namespace=\"ml\"} %d\n",
					g, node, g, node, pod.Load(), 40+g)
			}
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	renamed, stopping := exporter("node-r"), exporter("node-s")
	targets := strings.TrimPrefix(renamed.URL, "http://") + "," + strings.TrimPrefix(stopping.URL, "http://")
	scraping := start(t, "--database-url="+sqlstoretest.SQLiteURL(t), "--scrape-targets="+targets, "--scrape-interval=1s", "--scrape-job=dcgm")
	receiving := start(t, "--database-url="+sqlstoretest.SQLiteURL(t), "--remote-write")
	promBase, _ := runPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: dcgm
    static_configs: [{targets: [%s]}]
remote_write:
  - url: %s/api/v1/write
    queue_config: {batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 1s}
`, targets, receiving.base))
	bases := []string{promBase, scraping.base + "/prometheus", receiving.base + "/prometheus"}

	value := func(base, query string) float64 {
		for _, v := range promResult(t, base+"/api/v1/query", url.Values{"query": {query}}).series {
			return v[0][1]
		}
		return -1
	}
	for _, base := range bases {
		require.Eventually(t, func() bool { return value(base, `count(DCGM_FI_DEV_GPU_UTIL)`) == 6 }, 30*time.Second, 100*time.Millisecond, base)
	}
	time.Sleep(2 * time.Second)
	pod.Store("worker-b")
	stopping.Close()
	changed := time.Now()
	for _, base := range bases {
		require.Eventually(t, func() bool {
			return value(base, `count(DCGM_FI_DEV_GPU_UTIL)`) == 3 && value(base, `count(DCGM_FI_DEV_GPU_UTIL{pod="worker-b"})`) == 3
		}, 10*time.Second, 100*time.Millisecond, "%s: the renamed pod's 3 series, the old pod's and the stopped target's ended", base)
		t.Logf("%s: 3 series %s after the change", base, time.Since(changed).Round(100*time.Millisecond))
	}
	// Within a scrape interval or two of the change (with the time a sample takes to be
	// stored), each answers alike.
	assert.Less(t, time.Since(changed), 6*time.Second)
	for _, base := range bases {
		assert.Equal(t, 3.0, value(base, `count(DCGM_FI_DEV_GPU_UTIL)`), base)
		assert.Equal(t, 0.0, value(base, `up{instance="`+strings.TrimPrefix(stopping.URL, "http://")+`"}`), "%s: the stopped target down", base)
		assert.Equal(t, 2.0, value(base, `count(up)`), base)
	}
}

// One sample stamped 2262 on a live GPU is refused and counted: the GPU's latest value and
// the store's newest sample stay in the present, and compaction seals no window for it.
func TestASampleFromTheFutureIsRefused(t *testing.T) {
	p := start(t, "--database-url="+sqlstoretest.SQLiteURL(t), "--remote-write", "--compact-interval=100ms")
	now := time.Now().Truncate(time.Millisecond)
	for _, at := range []time.Time{now, time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC)} {
		status, _ := call(t, http.DefaultClient, "POST", p.base+"/api/v1/write", "", remoteWriteBody(t, "GPU-future", at), remoteWriteHeader)
		require.Equal(t, http.StatusNoContent, status)
	}
	metrics := apptest.ScrapeMetrics(t, strings.TrimPrefix(p.base, "http://")) // counted before the requests were answered
	assert.Equal(t, 1.0, apptest.MetricValue(t, metrics, "telemetry_live_samples_future_total"))
	assert.Equal(t, 1.0, apptest.MetricValue(t, metrics, "telemetry_samples_published_total", "source", "live"), "the present sample only")
	p.waitForSamples(t, 1)
	var latest httpapi.LatestList
	require.Equal(t, http.StatusOK, p.get(t, "/api/v1/gpus/GPU-future/latest", &latest))
	require.Len(t, latest.Data, 1)
	assert.True(t, latest.Data[0].Timestamp.Equal(now), "latest %s", latest.Data[0].Timestamp)
	var st struct {
		Total  int64     `json:"total_records"`
		Newest time.Time `json:"newest_sample"`
	}
	require.Equal(t, http.StatusOK, p.get(t, "/api/v1/stats", &st))
	assert.EqualValues(t, 1, st.Total)
	assert.True(t, st.Newest.Equal(now), "newest %s", st.Newest)
	assert.Contains(t, p.logs.String(), "samples stamped ahead of the clock refused")

	// Compaction goes on as for the present alone: passes, and no window over to seal (a
	// stored sample of 2262 made every pass seal every device's window).
	require.Eventually(t, func() bool {
		return apptest.MetricValue(t, apptest.ScrapeMetrics(t, strings.TrimPrefix(p.base, "http://")), "telemetry_compaction_passes_total", "result", "ok") >= 5
	}, 10*time.Second, 100*time.Millisecond)
	assert.Zero(t, apptest.MetricValue(t, apptest.ScrapeMetrics(t, strings.TrimPrefix(p.base, "http://")), "telemetry_compaction_windows_sealed_total"))
}
