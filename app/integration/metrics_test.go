package integration

import (
	"bytes"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// Every mode of a split deployment serves /metrics that promtool finds clean, and the counts
// agree with what the store holds: the streamer replays the bundled file in a loop, the
// collector stores each sample once and counts the replays as redelivered.
func TestMetricsOfEveryModeAreCleanAndAgree(t *testing.T) {
	p := newPipeline(t)
	collector := p.collector(t, "collector")
	streamer := p.streamer(t, "streamer", "0/1", "--loop=true")
	require.Eventually(t, func() bool {
		samples, _ := p.counts()
		return samples >= 2470
	}, time.Minute, 100*time.Millisecond, "the bundled file stored")
	api := apptest.Spawn(t, "api", "--mode=api", "--database-url="+p.dbURL)
	for _, proc := range []*apptest.Proc{collector, streamer, api} {
		apptest.WaitUp(t, "http://"+proc.Addr)
	}
	resp, err := http.Get("http://" + api.Addr + "/api/v1/gpus")
	require.NoError(t, err)
	resp.Body.Close()

	require.Eventually(t, func() bool {
		return apptest.MetricValue(t, apptest.ScrapeMetrics(t, streamer.Addr), "telemetry_batches_published_total", "source", "csv") > 2470/50
	}, time.Minute, 100*time.Millisecond, "a pass published, and another begun")
	st := apptest.ScrapeMetrics(t, streamer.Addr)
	assert.GreaterOrEqual(t, apptest.MetricValue(t, st, "telemetry_samples_published_total", "source", "csv"), 2470.0)
	assert.GreaterOrEqual(t, apptest.MetricValue(t, st, "telemetry_source_rows_total"), 2470.0)
	assert.Contains(t, st, "telemetry_redis_queue_batches")

	require.Eventually(t, func() bool {
		return apptest.MetricValue(t, apptest.ScrapeMetrics(t, collector.Addr), "telemetry_batches_redelivered_total") > 0
	}, time.Minute, 100*time.Millisecond, "the replays recognised")
	co := apptest.ScrapeMetrics(t, collector.Addr)
	samples, _ := p.counts()
	assert.EqualValues(t, 2470, samples)
	assert.EqualValues(t, samples, apptest.MetricValue(t, co, "telemetry_samples_stored_total"), "stored once, counted once")
	assert.Zero(t, apptest.MetricValue(t, co, "telemetry_samples_not_stored_total", "reason", "invalid"))
	assert.Positive(t, histogramCount(t, co, "telemetry_batch_write_duration_seconds", "result", "stored"), "writes timed")
	assert.Positive(t, apptest.MetricValue(t, co, "telemetry_compaction_passes_total", "result", "ok"), "the compactor ran")
	assert.Contains(t, co, "telemetry_retention_passes_total")
	assert.Contains(t, st, "telemetry_redis_queue_oldest_batch_age_seconds")

	ap := apptest.ScrapeMetrics(t, api.Addr)
	assert.Equal(t, uint64(1), histogramCount(t, ap, "telemetry_http_request_duration_seconds", "route", "/api/v1/gpus"))
	assert.Positive(t, apptest.MetricValue(t, ap, "process_cpu_seconds_total"))

	promtool := promtoolBinary(t)
	for _, proc := range []*apptest.Proc{collector, streamer, api} {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(apptest.Fetch(t, "http://"+proc.Addr+"/metrics"))
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s: promtool check metrics:\n%s", proc.Name, out)
		assert.Empty(t, strings.TrimSpace(string(out)), "%s: promtool check metrics", proc.Name)
	}
}

func histogramCount(t *testing.T, families map[string]*dto.MetricFamily, name string, labelPairs ...string) uint64 {
	t.Helper()
	m := apptest.Series(families, name, labelPairs...)
	require.NotNil(t, m, "%s%v is not served", name, labelPairs)
	return m.GetHistogram().GetSampleCount()
}
