package scrapesource_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/scrapesource"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// exposition is what dcgm-exporter 3.3 serves on a node with a MIG-partitioned A100 in
// Kubernetes: HELP and TYPE lines, MIG instances' GPU_I_ID and GPU_I_PROFILE, pod
// attribution, and a series of its own that names no GPU.
const exposition = `# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-b8c8ed0c-2b5d-2e4b-a9e4-8c8ba5c0f3a1",pci_bus_id="00000000:07:00.0",device="nvidia0",modelName="NVIDIA A100-SXM4-40GB",Hostname="gpu-node-1",DCGM_FI_DRIVER_VERSION="535.104.12",container="",namespace="",pod=""} 34
# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.
# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="0",UUID="GPU-b8c8ed0c-2b5d-2e4b-a9e4-8c8ba5c0f3a1",pci_bus_id="00000000:07:00.0",device="nvidia0",modelName="NVIDIA A100-SXM4-40GB",GPU_I_PROFILE="1g.5gb",GPU_I_ID="7",Hostname="gpu-node-1",DCGM_FI_DRIVER_VERSION="535.104.12",container="trainer",namespace="team-a",pod="train-0"} 0.812345
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="0",UUID="GPU-b8c8ed0c-2b5d-2e4b-a9e4-8c8ba5c0f3a1",pci_bus_id="00000000:07:00.0",device="nvidia0",modelName="NVIDIA A100-SXM4-40GB",GPU_I_PROFILE="1g.5gb",GPU_I_ID="8",Hostname="gpu-node-1",DCGM_FI_DRIVER_VERSION="535.104.12",container="",namespace="",pod=""} 0.000000
# HELP DCGM_FI_DEV_XID_ERRORS Value of the last XID error encountered.
# TYPE DCGM_FI_DEV_XID_ERRORS gauge
DCGM_FI_DEV_XID_ERRORS{gpu="0",UUID="GPU-b8c8ed0c-2b5d-2e4b-a9e4-8c8ba5c0f3a1",pci_bus_id="00000000:07:00.0",device="nvidia0",modelName="NVIDIA A100-SXM4-40GB",Hostname="gpu-node-1",DCGM_FI_DRIVER_VERSION="535.104.12",err_code="0",err_msg="No Error",container="",namespace="",pod=""} 0
# HELP dcgm_exporter_last_update_time_seconds Last time the exporter updated.
# TYPE dcgm_exporter_last_update_time_seconds gauge
dcgm_exporter_last_update_time_seconds 1.752871354e+09
`

// collect gathers what a scraper delivers.
type collect struct {
	mu     sync.Mutex
	groups [][]telemetry.Reading
}

func (c *collect) deliver(_ context.Context, rs []telemetry.Reading) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups = append(c.groups, rs)
	return nil
}

// gpus is the readings of GPUs of a delivery; own, the target's own (up, …) by metric.
func gpus(rs []telemetry.Reading) []telemetry.Reading {
	var out []telemetry.Reading
	for _, r := range rs {
		if !r.GPU.IsTarget() {
			out = append(out, r)
		}
	}
	return out
}

func own(rs []telemetry.Reading) map[string]float64 {
	out := map[string]float64{}
	for _, r := range rs {
		if r.GPU.IsTarget() {
			out[r.Sample.Metric] = r.Sample.Value
		}
	}
	return out
}

func (c *collect) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.groups)
}

func TestScrapeReadsDCGMExporter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/metrics", r.URL.Path)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(exposition))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	sc := scrapesource.New(scrapesource.Options{Static: []string{host}, Interval: 200 * time.Millisecond, Job: "gpu"})
	var c collect
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx, c.deliver) }()
	require.Eventually(t, func() bool { return c.n() >= 2 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	got := gpus(c.groups[0])
	require.Len(t, got, 4, "the exporter's own series names no GPU")
	for _, r := range c.groups[0] {
		assert.Equal(t, got[0].Sample.Time, r.Sample.Time, "one scrape, one timestamp, the target's own series' too")
	}
	targetOwn := own(c.groups[0])
	assert.Equal(t, 1.0, targetOwn["up"])
	assert.Equal(t, 5.0, targetOwn["scrape_samples_scraped"], "every sample exposed, the exporter's own too")
	assert.Positive(t, targetOwn["scrape_duration_seconds"])
	assert.NotEqual(t, got[0].Sample.Time, c.groups[1][0].Sample.Time)
	byKey := map[string]telemetry.Reading{}
	for _, r := range got {
		byKey[r.Sample.GPU+" "+r.Sample.Metric] = r
	}
	mig := byKey["GPU-b8c8ed0c-2b5d-2e4b-a9e4-8c8ba5c0f3a1/7 DCGM_FI_PROF_GR_ENGINE_ACTIVE"]
	assert.Equal(t, 0.812345, mig.Sample.Value)
	assert.Equal(t, telemetry.Sample{GPU: mig.Sample.GPU, Metric: mig.Sample.Metric, Time: mig.Sample.Time, Value: 0.812345,
		Container: "trainer", Pod: "train-0", Namespace: "team-a"}, mig.Sample)
	assert.Equal(t, telemetry.GPU{UUID: "GPU-b8c8ed0c-2b5d-2e4b-a9e4-8c8ba5c0f3a1", Instance: "7", InstanceProfile: "1g.5gb",
		Hostname: "gpu-node-1", Index: 0, Device: "nvidia0", ModelName: "NVIDIA A100-SXM4-40GB", DriverVersion: "535.104.12",
		PCIBusID: "00000000:07:00.0", Labels: map[string]string{"instance": host, "job": "gpu"}}, mig.GPU)
	assert.Contains(t, byKey, "GPU-b8c8ed0c-2b5d-2e4b-a9e4-8c8ba5c0f3a1/8 DCGM_FI_PROF_GR_ENGINE_ACTIVE", "instances apart")
	xid := byKey["GPU-b8c8ed0c-2b5d-2e4b-a9e4-8c8ba5c0f3a1 DCGM_FI_DEV_XID_ERRORS"]
	assert.Equal(t, "No Error", xid.GPU.Labels["DCGM_FI_DEV_XID_ERRORS:err_msg"], "every other label kept, the family's own under its name")

	targets := sc.Targets()
	require.Len(t, targets, 1)
	assert.Equal(t, "up", targets[0].Health)
	assert.Equal(t, 4, targets[0].LastSamples)
	assert.Equal(t, 1, targets[0].LastDropped)
}

// A target that fails is down, retried every interval, and up again when it answers; the
// others go on meanwhile. Targets come from a file_sd file and are split by Keep.
func TestTargetDownAndBack(t *testing.T) {
	var failing atomic.Bool
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "exporter restarting", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(exposition))
	}))
	defer bad.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(exposition)) }))
	defer good.Close()
	file := filepath.Join(t.TempDir(), "targets.yaml")
	require.NoError(t, os.WriteFile(file, []byte("- targets: ["+strings.TrimPrefix(bad.URL, "http://")+", "+
		strings.TrimPrefix(good.URL, "http://")+", other-shard:9400]\n  labels: {cluster: lab}\n"), 0o644))
	sc := scrapesource.New(scrapesource.Options{File: file, Interval: 100 * time.Millisecond,
		Keep: func(u string) bool { return !strings.Contains(u, "other-shard") }})
	var c collect
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = sc.Run(ctx, c.deliver) }()

	health := func() map[string]string {
		out := map[string]string{}
		for _, tg := range sc.Targets() {
			out[tg.URL] = tg.Health
			assert.Equal(t, "lab", tg.Labels["cluster"])
		}
		return out
	}
	require.Eventually(t, func() bool { h := health(); return len(h) == 2 && h[bad.URL+"/metrics"] == "up" }, 5*time.Second, 10*time.Millisecond)
	failing.Store(true)
	require.Eventually(t, func() bool { return health()[bad.URL+"/metrics"] == "down" }, time.Second, 10*time.Millisecond, "down within two intervals")
	assert.Equal(t, "up", health()[good.URL+"/metrics"])
	for _, tg := range sc.Targets() {
		if tg.URL == bad.URL+"/metrics" {
			assert.Contains(t, tg.LastError, "503")
		}
	}
	failing.Store(false)
	require.Eventually(t, func() bool { return health()[bad.URL+"/metrics"] == "up" }, time.Second, 10*time.Millisecond, "back up")
}

func TestBadTargetsFileFailsAtStart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "targets.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"targets": "not a list"}`), 0o644))
	err := scrapesource.New(scrapesource.Options{File: file}).Check()
	assert.ErrorContains(t, err, "not Prometheus file_sd")
	err = scrapesource.New(scrapesource.Options{File: file + ".missing"}).Check()
	assert.ErrorContains(t, err, "no such file")
}

// A delivery slower than the interval (a queue that holds up) skips intervals, and the
// target's status counts them; a fast one misses none.
func TestOverrunIntervalsAreCounted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(exposition)) }))
	defer srv.Close()
	for _, slow := range []bool{false, true} {
		sc := scrapesource.New(scrapesource.Options{Static: []string{srv.URL}, Interval: 50 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- sc.Run(ctx, func(context.Context, []telemetry.Reading) error {
				if slow {
					time.Sleep(120 * time.Millisecond)
				}
				return nil
			})
		}()
		require.Eventually(t, func() bool { tg := sc.Targets(); return len(tg) == 1 && tg[0].Scrapes >= 4 }, 5*time.Second, 5*time.Millisecond)
		cancel()
		require.NoError(t, <-done)
		tg := sc.Targets()[0]
		if slow {
			assert.GreaterOrEqual(t, tg.Missed, 2*(tg.Scrapes-1), "each slow delivery skips two intervals")
		} else {
			assert.Zero(t, tg.Missed)
		}
	}
}

// A sample the store cannot keep is dropped and counted apart from series without a GPU.
func TestUnkeepableSamplesCountedApart(t *testing.T) {
	exposition := `DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-1",Hostname="n1"} 41
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-1",Hostname="n1"} NaN
DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-1",Hostname="n1"} 310.5
process_cpu_seconds_total 12
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(exposition))
	}))
	defer srv.Close()
	sc := scrapesource.New(scrapesource.Options{Static: []string{strings.TrimPrefix(srv.URL, "http://")}, Interval: 100 * time.Millisecond})
	var c collect
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx, c.deliver) }()
	require.Eventually(t, func() bool { return c.n() >= 1 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.Len(t, gpus(c.groups[0]), 2)
	tg := sc.Targets()[0]
	assert.Equal(t, 2, tg.LastSamples)
	assert.Equal(t, 2, tg.LastDropped, "the exporter's own series and the NaN")
	assert.Equal(t, 1, tg.LastRejected, "the NaN")
}
