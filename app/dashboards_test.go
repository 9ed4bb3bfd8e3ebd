package main

import (
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
)

// dashboardQueries reads a shipped Grafana dashboard's panel queries, with Grafana's
// variables given values PromQL parses.
func dashboardQueries(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(raw, &d), path)
	require.NotEmpty(t, d.Panels, path)
	out := map[string]string{}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$host", ".*")
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Targets, "%s: %s has no query", path, p.Title)
		for i, tg := range p.Targets {
			out[p.Title+" #"+string(rune('A'+i))] = vars.Replace(tg.Expr)
		}
	}
	return out
}

// The pipeline's dashboard asks only for series its processes serve.
func TestPipelineDashboardQueriesServedMetrics(t *testing.T) {
	served := map[string]bool{"telemetry_http_request_duration_seconds_bucket": true, "telemetry_batch_write_duration_seconds_bucket": true,
		"process_resident_memory_bytes": true, "process_cpu_seconds_total": true, "go_memstats_heap_inuse_bytes": true}
	for _, f := range (&wiring{}).metricFamilies() {
		served[f.Name] = true
	}
	p := parser.NewParser(parser.Options{})
	for title, q := range dashboardQueries(t, "../deploy/helm/telemetry-pipeline/files/dashboards/pipeline-health.json") {
		expr, err := p.ParseExpr(q)
		require.NoError(t, err, "%s: %s", title, q)
		for _, ms := range parser.ExtractSelectors(expr) {
			for _, m := range ms {
				if m.Name == labels.MetricName {
					assert.True(t, served[m.Value], "%s: %s is not served by /metrics", title, m.Value)
				}
			}
		}
	}
}

// Every panel of the fleet dashboard answers over the PromQL API on the bundled file.
func TestFleetDashboardAnswersOnTheBundledData(t *testing.T) {
	pr := start(t, "--database-url="+sqlstoretest.SQLiteURL(t), "--loop=false", "--timestamps=csv", "--interval=0")
	pr.waitForSamples(t, 2470)
	for title, q := range dashboardQueries(t, "../deploy/helm/telemetry-pipeline/files/dashboards/gpu-fleet.json") {
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
