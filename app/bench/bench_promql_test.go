package bench

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// benchEnd is when the PromQL benchmark's data ends and its panels look back from: now,
// or with TELEMETRY_BENCH_PROMQL_AT (say 22m) the last time before now that far into a
// two-hour window, where the newest hour partly lies in that window's first minutes.
func benchEnd(b *testing.B) time.Time {
	now := time.Now()
	at := os.Getenv("TELEMETRY_BENCH_PROMQL_AT")
	if at == "" {
		return now
	}
	into, err := time.ParseDuration(at)
	require.NoError(b, err, "TELEMETRY_BENCH_PROMQL_AT")
	end := now.Truncate(2 * time.Hour).Add(into)
	if end.After(now) {
		end = end.Add(-2 * time.Hour)
	}
	return end
}

// benchPromQL loads six hours of the simulated fleet, scraped every 30 s, into Debian's
// Prometheus and into the pipeline (mode all, PostgreSQL) by remote_write, then runs
// dashboard-style query_range panels against both, one after the other with 4 clients, and
// prints each one's p99 and the ratio. TELEMETRY_BENCH_PROMQL_SPAN=7d loads a week instead,
// the panels still over its last hours: a store holding history, not only what is shown.
func benchPromQL(b *testing.B) {
	promBin, err := exec.LookPath("prometheus")
	require.NoError(b, err, "prometheus is not installed (make bench installs Debian's)")
	span, step := 6*time.Hour, 30*time.Second
	if v := os.Getenv("TELEMETRY_BENCH_PROMQL_SPAN"); v != "" {
		d, err := model.ParseDuration(v)
		require.NoError(b, err, "TELEMETRY_BENCH_PROMQL_SPAN")
		span = max(time.Duration(d), span)
	}
	end := benchEnd(b)
	series := simulatedSeries(b, end, span, step)
	payloads, total := scrapePayloads(b, series)
	end = end.Truncate(time.Minute)
	uuid := string(series[0].labels["UUID"])

	prom := startPrometheusReceiver(b, promBin)
	// One sender: Prometheus 2.42 refuses a series' samples out of order, which concurrent
	// requests would deliver.
	sendAllFrom(b, "http://"+prom+"/api/v1/write", payloads, 1)
	dbURL := sqlstoretest.PostgresURL(b)
	p, base, count := spawnCounted(b, "promql", "--remote-write", "--database-url="+dbURL, "--log-level=warn")
	sendAll(b, base+"/api/v1/write", payloads)
	waitQueryable(b, "pipeline", total, count)
	defer func() { p.Signal(syscall.SIGTERM); <-p.Done }()
	waitCompacted(b, p.Addr)
	// As autovacuum would have by then: compaction left the rows it replaced dead, and index
	// scans step over them until a vacuum (or, unpredictably, autovacuum during a panel).
	db, err := sql.Open("pgx", dbURL)
	require.NoError(b, err)
	_, err = db.Exec("VACUUM ANALYZE chunks")
	require.NoError(b, err)
	require.NoError(b, db.Close())

	panels := []struct {
		name, query string
		span, step  time.Duration
	}{
		{"average utilisation by host, 6 h, step 30s, 247 GPUs", `avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)`, 6 * time.Hour, 30 * time.Second},
		{"one GPU's 10 metrics, 6 h, step 60s", `{__name__=~"DCGM_FI_DEV_.*",UUID="` + uuid + `"}`, 6 * time.Hour, time.Minute},
		{"hottest 10 GPUs, 1 h, step 15s", `topk(10, DCGM_FI_DEV_GPU_TEMP)`, time.Hour, 15 * time.Second},
		{"every GPU's temperature, 6 h, step 30s", `DCGM_FI_DEV_GPU_TEMP`, 6 * time.Hour, 30 * time.Second},
		{"the fleet's power, 6 h, step 30s", `sum(DCGM_FI_DEV_POWER_USAGE)`, 6 * time.Hour, 30 * time.Second},
	}
	fmt.Printf("\n| PromQL panel (%d samples, 4 clients) | Prometheus p99 | pipeline p99 | × Prometheus | requests/s: Prometheus / pipeline |\n|---|---|---|---|---|\n", total)
	for _, pn := range panels {
		path := func(prefix string) func(*rand.Rand) string {
			q := url.Values{"query": {pn.query}, "start": {strconv.FormatInt(end.Add(-pn.span).Unix(), 10)},
				"end": {strconv.FormatInt(end.Unix(), 10)}, "step": {strconv.Itoa(int(pn.step.Seconds()))}}
			return func(*rand.Rand) string { return prefix + "/api/v1/query_range?" + q.Encode() }
		}
		hammer(b, prom, path(""), 4, time.Second) // warm up
		_, promP99, promRPS := hammer(b, prom, path(""), 4, 5*time.Second)
		hammer(b, p.Addr, path("/prometheus"), 4, time.Second)
		_, ourP99, ourRPS := hammer(b, p.Addr, path("/prometheus"), 4, 5*time.Second)
		fmt.Printf("| %s | %.1f ms | %.1f ms | %.2f | %.0f / %.0f |\n", pn.name, ms(promP99), ms(ourP99),
			float64(ourP99)/float64(promP99), promRPS, ourRPS)
	}
}

// startPrometheusReceiver runs Prometheus with its remote_write receiver on and nothing to
// scrape, and returns its address.
func startPrometheusReceiver(b *testing.B, bin string) string {
	return startPrometheusOn(b, bin, b.TempDir())
}

// startPrometheusOn is startPrometheusReceiver on a TSDB in dir, with flags added.
func startPrometheusOn(b *testing.B, bin, dir string, flags ...string) string {
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(b, os.WriteFile(cfg, []byte("global: {}\n"), 0o644))
	addr := apptest.FreeAddr(b)
	cmd := exec.Command(bin, append([]string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--web.enable-remote-write-receiver", "--log.level=warn"}, flags...)...)
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	require.NoError(b, err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(b, cmd.Start())
	b.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait(); logFile.Close() })
	apptest.WaitUp(b, "http://"+addr+"/-") // /-/ready
	return addr
}

// waitCompacted waits until the compactor has nothing left to merge or seal — two passes
// that rewrite no chunk — as a store taking a steady stream is, minutes after the samples
// arrived: six hours sent at once leave the open window in small chunks for some passes.
func waitCompacted(b *testing.B, addr string) {
	deadline := time.Now().Add(5 * time.Minute)
	var rewritten, passes, idleSince float64 = -1, 0, 0
	for time.Now().Before(deadline) {
		m := apptest.ScrapeMetrics(b, addr)
		r := apptest.MetricValue(b, m, "telemetry_compaction_chunks_rewritten_total")
		passes = apptest.MetricValue(b, m, "telemetry_compaction_passes_total", "result", "ok")
		if r != rewritten {
			rewritten, idleSince = r, passes
		} else if passes >= idleSince+2 {
			return
		}
		time.Sleep(time.Second)
	}
	b.Fatalf("the compactor still rewrote chunks after 5 minutes (%v so far)", rewritten)
}
