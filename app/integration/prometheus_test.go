package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// prometheusBinary is Debian's prometheus, which make test installs; without it (and without
// CI) these tests skip.
// Tests against it compare with a reference and take seconds each: they run under make test.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	slowTest(t, "compared with a real Prometheus")
	return debianBinary(t, "prometheus", "prometheus")
}

// slowTest skips t in a plain `go test ./...`, which runs the unit, contract and quick
// process tests in under two minutes: what, a test of many processes, a reference server or
// a large fleet, runs under make test (CI=true) or with TELEMETRY_LONG_TESTS=1.
func slowTest(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") != "true" && os.Getenv("TELEMETRY_LONG_TESTS") == "" {
		t.Skipf("%s: runs under make test (CI=true) or with TELEMETRY_LONG_TESTS=1", what)
	}
}

// promtoolBinary is Debian's promtool, which comes with its prometheus.
func promtoolBinary(t *testing.T) string { return debianBinary(t, "promtool", "prometheus") }

// debianBinary is the path of a program of a Debian package that scripts/ensure-services.sh
// installs: a test needing it fails without it under CI, else skips.
func debianBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (scripts/ensure-services.sh installs Debian's %s)", name, pkg)
		}
		t.Skipf("%s is not installed; make test installs Debian's %s", name, pkg)
	}
	return path
}

// simulator serves the bundled fleet's 31 simulated dcgm-exporters (the first GPU split into
// 7 MIG instances) until stop is called, and returns its file_sd file.
func simulator(t *testing.T, args ...string) (targetsFile string, stop func()) {
	t.Helper()
	targetsFile = filepath.Join(t.TempDir(), "targets.json")
	for range 20 {
		base := apptest.FreeAddrs(t, 31) // a port a host; taken meanwhile, try again
		p := launch(t, append([]string{"simulate", "--listen=" + base, "--targets-file=" + targetsFile}, args...)...)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(targetsFile); err == nil {
				return targetsFile, func() { _ = p.stop(t) }
			}
			select {
			case <-p.done:
				require.Contains(t, p.logs.String(), "address already in use")
				deadline = time.Time{}
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	t.Fatal("no 31 free ports for the simulator")
	return "", nil
}

// startPrometheus runs Prometheus scraping the targets every second and remote-writing to
// writeURL, and returns its HTTP API's base URL and its process.
func startPrometheus(t *testing.T, targetsFile, writeURL string, writeConfig ...string) (string, *exec.Cmd) {
	t.Helper()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: dcgm
    file_sd_configs: [{files: [%q], refresh_interval: 1s}]
remote_write:
  - url: %s
    remote_timeout: 5s
    queue_config: {batch_send_deadline: 500ms, min_backoff: 50ms, max_backoff: 1s, max_samples_per_send: 2000}
`, targetsFile, writeURL)
	for _, line := range writeConfig {
		config += "    " + line + "\n"
	}
	return runPrometheus(t, config)
}

// runPrometheus runs Prometheus on config until the test ends, and returns its HTTP API's
// base URL and its process.
func runPrometheus(t *testing.T, config string) (string, *exec.Cmd) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644))
	addr := freeAddr(t)
	cmd := exec.Command(prometheusBinary(t), "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	logs := &apptest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus logs:\n%s", apptest.Tail(logs.String(), 4000))
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "prometheus ready")
	return "http://" + addr, cmd
}

// seriesTotals is one series' sample count and the sum of its values.
type seriesTotals struct {
	count int
	sum   float64
}

func seriesKey(uuid, instance, metric string) string { return uuid + "/" + instance + " " + metric }

// storeTotals reads every stored sample back through the store, per series.
func storeTotals(t *testing.T, dbURL string) (map[string]seriesTotals, int) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
	require.NoError(t, err)
	defer store.Close()
	gpus, err := store.GPUs(ctx, telemetry.GPUFilter{})
	require.NoError(t, err)
	out := map[string]seriesTotals{}
	seen := map[string]bool{}
	dups := 0
	for _, g := range gpus {
		_, err := store.Samples(ctx, telemetry.SampleQuery{GPU: g.Key()}, func(s telemetry.Sample) error {
			id := s.GPU + s.Metric + s.Time.String() + s.Namespace + "/" + s.Pod // each pod of a time-sliced GPU its own
			if seen[id] {
				dups++
			}
			seen[id] = true
			k := seriesKey(g.UUID, g.Instance, s.Metric)
			tot := out[k]
			tot.count++
			tot.sum += s.Value
			out[k] = tot
			return nil
		})
		require.NoError(t, err)
	}
	return out, dups
}

// prometheusTotalsByMetric asks Prometheus for each metric's series' sample counts and sums
// over the last hour, one metric at a time: *_over_time drops the metric name.
func prometheusTotalsByMetric(t *testing.T, base string, metrics []string) map[string]seriesTotals {
	out := map[string]seriesTotals{}
	for _, m := range metrics {
		for k, v := range prometheusTotalsOf(t, base, m) {
			out[k] = v
		}
	}
	return out
}

func prometheusTotalsOf(t *testing.T, base, metric string) map[string]seriesTotals {
	t.Helper()
	out := map[string]seriesTotals{}
	for _, fn := range []string{"count_over_time", "sum_over_time"} {
		q := url.Values{"query": {fn + "(" + metric + "[1h])"}}
		resp, err := http.Get(base + "/api/v1/query?" + q.Encode())
		require.NoError(t, err)
		var body struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  [2]any            `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		resp.Body.Close()
		for _, r := range body.Data.Result {
			v, err := strconv.ParseFloat(r.Value[1].(string), 64)
			require.NoError(t, err)
			// A device's series of a metric add up, as the store's do: the pods time-slicing
			// a GPU, an XID series whose err_code changed.
			name := metric
			if folded := telemetry.FoldedLabels[metric]; folded != "" && r.Metric[folded] != "" {
				name = telemetry.FoldMetric(metric, r.Metric[folded]) // as the store keeps it
			}
			k := seriesKey(r.Metric["UUID"], r.Metric["GPU_I_ID"], name)
			tot := out[k]
			if fn == "count_over_time" {
				tot.count += int(v)
			} else {
				tot.sum += v
			}
			out[k] = tot
		}
	}
	return out
}

// requireSameAsPrometheus waits until the store holds as many samples as Prometheus and
// checks every series of the fleet's fields (the simulator's: the bundled file's 10, engine
// and SM activity, XID, the XID count, throttle reasons and ECC errors): same count
// (nothing lost, nothing twice), same values.
func requireSameAsPrometheus(t *testing.T, promBase, dbURL string, fields int, within time.Duration) {
	t.Helper()
	resp, err := http.Get(promBase + "/api/v1/label/__name__/values")
	require.NoError(t, err)
	var names struct{ Data []string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&names))
	resp.Body.Close()
	var metrics []string
	for _, n := range names.Data {
		if strings.HasPrefix(n, "DCGM_") {
			metrics = append(metrics, n)
		}
	}
	require.Len(t, metrics, fields, "the fleet's fields")
	want := prometheusTotalsByMetric(t, promBase, metrics)
	devices := map[string]bool{}
	for k := range want {
		devices[strings.Fields(k)[0]] = true
	}
	require.Len(t, devices, 247+7, "Prometheus holds the series of 247 GPUs and 7 MIG instances")
	total := 0
	for _, v := range want {
		total += v.count
	}
	var got map[string]seriesTotals
	var dups int
	require.Eventually(t, func() bool {
		got, dups = storeTotals(t, dbURL)
		n := 0
		for _, v := range got {
			n += v.count
		}
		return n >= total
	}, within, time.Second, "the store catches up with Prometheus' %d samples", total)
	assert.Zero(t, dups, "samples stored twice")
	assert.Len(t, got, len(want), "series")
	for k, w := range want {
		g := got[k]
		assert.Equal(t, w.count, g.count, "samples of %s", k)
		assert.InEpsilon(t, w.sum+1, g.sum+1, 1e-9, "values of %s", k)
	}
	t.Logf("%d series, %d samples, equal in Prometheus and the store", len(want), total)
}

// A real Prometheus scrapes 31 simulated dcgm-exporters every second and remote-writes to
// the pipeline in mode all: once the exporters are gone (Prometheus then writes staleness
// markers, which are not samples), the store holds exactly what Prometheus' own TSDB holds.
func TestPrometheusRemoteWriteModeAll(t *testing.T) {
	t.Parallel()
	prometheusBinary(t)
	dbURL := sqlstoretest.PostgresURL(t)
	p := start(t, "--remote-write", "--database-url="+dbURL, "--compact-interval=1s")
	targets, stopSim := simulator(t)
	promBase, _ := startPrometheus(t, targets, p.base+"/api/v1/write")

	run := 12 * time.Second
	if longTests() {
		run = time.Minute
	}
	time.Sleep(run)
	stopSim()
	time.Sleep(3 * time.Second) // the last scrapes fail, stale markers go out
	requireSameAsPrometheus(t, promBase, dbURL, 16, time.Minute)

	var gpu struct {
		MIGInstances []struct {
			GPUInstance string `json:"gpu_instance"`
		} `json:"mig_instances"`
	}
	require.Equal(t, http.StatusOK, p.get(t, "/api/v1/gpus/GPU-5fd4f087-86f3-7a43-b711-4771313afc50", &gpu))
	assert.Len(t, gpu.MIGInstances, 7, "the MIG-partitioned GPU shows as 7 devices under it")
}

// The same in split mode — the receiver in a streamer, Redis, two collectors — while one
// collector is SIGKILLed mid-run and restarted, and Redis (persisting, as in the compose
// file) restarts: Prometheus' retries and asynq's redelivery bring everything in once.
func TestPrometheusRemoteWriteSplitUnderFaults(t *testing.T) {
	slowTest(t, "a split pipeline under faults, compared with Prometheus")
	t.Parallel()
	prometheusBinary(t)
	p := newPipeline(t)
	var restartRedis func()
	p.redisURL, restartRedis = ownRedis(t)
	victim := p.collector(t, "collector-a")
	p.collector(t, "collector-b")
	// Requests wait a second at most for the queue: the Redis restart (2 s) answers some 503.
	receiver := apptest.Spawn(t, "receiver", "--mode=streamer", "--remote-write", "--remote-write-timeout=1s",
		"--redis-url="+p.redisURL, "--queue-name="+p.queue)
	receiver.WaitReady(t)
	victim.WaitReady(t)
	targets, stopSim := simulator(t)
	promBase, _ := startPrometheus(t, targets, "http://"+receiver.Addr+"/api/v1/write")

	time.Sleep(4 * time.Second)
	victim.Signal(syscall.SIGKILL)
	<-victim.Done
	p.collector(t, "collector-a-again")
	time.Sleep(3 * time.Second)
	restartRedis()
	after := 5 * time.Second
	if longTests() {
		after = 45 * time.Second // a minute of scrapes in all
	}
	time.Sleep(after)
	stopSim()
	time.Sleep(3 * time.Second)
	requireSameAsPrometheus(t, promBase, p.dbURL, 16, 30*time.Second) // a killed collector's batches come back within 20 s
	assert.True(t, logged(receiver, "failed, retrying"), "the Redis restart hit the receiver mid-run")
	assert.True(t, logged(receiver, "remote_write request not queued (503): the sender retries it"), "requests answered 503")
	assert.Positive(t, prometheusCounter(t, promBase, "prometheus_remote_storage_samples_retried_total"),
		"Prometheus retried what was answered 503, and the store holds it once")
}

// prometheusCounter reads one of Prometheus' own metrics from its /metrics, summed over
// its series.
func prometheusCounter(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	total := 0.0
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			fields := strings.Fields(line)
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			require.NoError(t, err)
			total += v
		}
	}
	return total
}

// longTests reports whether the minute-long variants run.
func longTests() bool { return os.Getenv("TELEMETRY_LONG_TESTS") == "1" }
