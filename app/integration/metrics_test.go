package integration

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	api := spawn(t, "api", "--mode=api", "--database-url="+p.dbURL)
	for _, proc := range []*proc{collector, streamer, api} {
		waitUp(t, "http://"+proc.addr)
	}
	resp, err := http.Get("http://" + api.addr + "/api/v1/gpus")
	require.NoError(t, err)
	resp.Body.Close()

	require.Eventually(t, func() bool {
		return value(t, scrapeMetrics(t, streamer.addr), "telemetry_batches_published_total", "source", "csv") > 2470/50
	}, time.Minute, 100*time.Millisecond, "a pass published, and another begun")
	st := scrapeMetrics(t, streamer.addr)
	assert.GreaterOrEqual(t, value(t, st, "telemetry_samples_published_total", "source", "csv"), 2470.0)
	assert.GreaterOrEqual(t, value(t, st, "telemetry_source_rows_total"), 2470.0)
	assert.Contains(t, st, "telemetry_redis_queue_batches")

	require.Eventually(t, func() bool {
		return value(t, scrapeMetrics(t, collector.addr), "telemetry_batches_redelivered_total") > 0
	}, time.Minute, 100*time.Millisecond, "the replays recognised")
	co := scrapeMetrics(t, collector.addr)
	samples, _ := p.counts()
	assert.EqualValues(t, 2470, samples)
	assert.EqualValues(t, samples, value(t, co, "telemetry_samples_stored_total"), "stored once, counted once")
	assert.Zero(t, value(t, co, "telemetry_samples_not_stored_total", "reason", "invalid"))
	assert.Positive(t, histogramCount(t, co, "telemetry_batch_write_duration_seconds", "result", "stored"), "writes timed")
	assert.Positive(t, value(t, co, "telemetry_compaction_passes_total", "result", "ok"), "the compactor ran")
	assert.Contains(t, co, "telemetry_retention_passes_total")
	assert.Contains(t, st, "telemetry_redis_queue_oldest_batch_age_seconds")

	ap := scrapeMetrics(t, api.addr)
	assert.Equal(t, uint64(1), histogramCount(t, ap, "telemetry_http_request_duration_seconds", "route", "/api/v1/gpus"))
	assert.Positive(t, value(t, ap, "process_cpu_seconds_total"))

	promtool := promtoolBinary(t)
	for _, proc := range []*proc{collector, streamer, api} {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(fetch(t, "http://"+proc.addr+"/metrics"))
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s: promtool check metrics:\n%s", proc.name, out)
		assert.Empty(t, strings.TrimSpace(string(out)), "%s: promtool check metrics", proc.name)
	}
}

func fetch(t testing.TB, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return body
}

// scrapeMetrics reads a process's /metrics, by family name.
func scrapeMetrics(t testing.TB, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(fetch(t, "http://"+addr+"/metrics")))
	require.NoError(t, err)
	return families
}

// series returns the metric of a family whose labels include the pairs given, nil if none.
func series(families map[string]*dto.MetricFamily, name string, labelPairs ...string) *dto.Metric {
	f := families[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labelPairs); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || l.GetName() == labelPairs[i] && l.GetValue() == labelPairs[i+1]
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value; a missing series fails the test.
func value(t testing.TB, families map[string]*dto.MetricFamily, name string, labelPairs ...string) float64 {
	t.Helper()
	m := series(families, name, labelPairs...)
	require.NotNil(t, m, "%s%v is not served", name, labelPairs)
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

func histogramCount(t *testing.T, families map[string]*dto.MetricFamily, name string, labelPairs ...string) uint64 {
	t.Helper()
	m := series(families, name, labelPairs...)
	require.NotNil(t, m, "%s%v is not served", name, labelPairs)
	return m.GetHistogram().GetSampleCount()
}
