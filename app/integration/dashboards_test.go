package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// Every panel of the fleet dashboard answers over the PromQL API on the bundled file.
func TestFleetDashboardAnswersOnTheBundledData(t *testing.T) {
	pr := start(t, "--database-url="+sqlstoretest.SQLiteURL(t), "--loop=false", "--timestamps=csv", "--interval=0")
	pr.waitForSamples(t, 2470)
	for title, q := range apptest.DashboardQueries(t, "../../deploy/helm/telemetry-pipeline/files/dashboards/gpu-fleet.json") {
		var body struct {
			Status string
			Data   struct{ Result []json.RawMessage }
		}
		code := pr.get(t, "/prometheus/api/v1/query?"+url.Values{"query": {q}, "time": {"2025-07-18T20:45:00Z"}}.Encode(), &body)
		assert.Equal(t, 200, code, "%s: %s", title, q)
		assert.Equal(t, "success", body.Status, "%s: %s", title, q)
		assert.NotEmpty(t, body.Data.Result, "%s: %s answers nothing", title, q)
	}
}

// The pipeline's own dashboard during a split run as make run-split starts one — the API,
// two collectors, two streamers, one of them replaying a file with bad rows — with a real
// Prometheus scraping every process: every panel's queries answer, and the ingestion rate,
// the backlog and the errors show.
func TestPipelineDashboardDuringASplitRun(t *testing.T) {
	t.Parallel()
	prometheusBinary(t) // before starting five processes for nothing
	p := newPipeline(t)
	dirty, _, _ := dirtyCSV(t)
	jobs := map[string][]*apptest.Proc{
		"telemetry-api":       {apptest.Spawn(t, "api", "--mode=api", "--database-url="+p.dbURL, "--redis-url="+p.redisURL, "--queue-name="+p.queue)},
		"telemetry-collector": {p.collector(t, "collector-0"), p.collector(t, "collector-1")},
	}
	for _, proc := range jobs["telemetry-collector"] {
		proc.WaitReady(t) // the schema, before the streamers publish
	}
	shared := []string{"--mode=streamer", "--redis-url=" + p.redisURL, "--queue-name=" + p.queue}
	jobs["telemetry-streamer"] = []*apptest.Proc{apptest.Spawn(t, "streamer-0", append(shared, "--shard=0/2")...),
		apptest.Spawn(t, "streamer-1", append(shared, "--shard=1/2", "--csv="+dirty)...)}
	config := "global: {scrape_interval: 1s, scrape_timeout: 900ms}\nscrape_configs:\n"
	for job, procs := range jobs {
		var addrs []string
		for _, proc := range procs {
			addrs = append(addrs, proc.Addr)
		}
		config += "  - job_name: " + job + "\n    static_configs: [{targets: [" + strings.Join(addrs, ", ") + "]}]\n"
	}
	prom, _ := runPrometheus(t, config)

	type result struct {
		Metric map[string]string
		Value  [2]any
	}
	ask := func(q string) (string, []result) {
		var body struct {
			Status string
			Data   struct{ Result []result }
		}
		getJSONOK(t, prom+"/api/v1/query?"+url.Values{"query": {q}}.Encode(), &body)
		return body.Status, body.Data.Result
	}
	positive := func(rs []result) bool {
		for _, r := range rs {
			if v, err := strconv.ParseFloat(r.Value[1].(string), 64); err == nil && v > 0 {
				return true
			}
		}
		return false
	}
	// What the dashboard must show while the pipeline runs: series there, and for the
	// rates, above zero.
	want := map[string]func([]result) bool{
		"Samples stored per second #A":               positive,
		"Samples published per second, by source #A": positive,
		"Batches waiting #A":                         func(rs []result) bool { return len(rs) == 1 },
		"Oldest waiting batch #A":                    func(rs []result) bool { return len(rs) == 1 },
		"CSV rows rejected, by reason #A":            positive,
		"Database write p99, by result #A":           positive,
		"API latency p99, by route #A":               func(rs []result) bool { return len(rs) > 0 },
		"Resident memory, by process #A":             func(rs []result) bool { return len(rs) == 5 },
		"CPU, by process #A":                         func(rs []result) bool { return len(rs) == 5 },
		"Go heap in use, by process #A":              func(rs []result) bool { return len(rs) == 5 },
		"Compaction and retention #A":                positive,
	}
	queries := apptest.DashboardQueries(t, "../../deploy/helm/telemetry-pipeline/files/dashboards/pipeline-health.json")
	for title := range want {
		require.Contains(t, queries, title, "a panel the dashboard no longer has")
	}
	api := jobs["telemetry-api"][0]
	var missing []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		resp, err := http.Get("http://" + api.Addr + "/api/v1/stats") // something for the API's latency panel
		require.NoError(t, err)
		resp.Body.Close()
		missing = missing[:0]
		for title, q := range queries {
			status, rs := ask(q)
			require.Equal(t, "success", status, "%s: %s", title, q)
			if shows := want[title]; shows != nil && !shows(rs) {
				missing = append(missing, title)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	assert.Empty(t, missing, "panels with nothing to show after a minute")
}
