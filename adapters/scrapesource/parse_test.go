package scrapesource_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/scrapesource"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// badExposition is a node's exposition as dcgm-exporter before 4.6 writes it for a vGPU
// field it cannot read, with two more faults: a label value left unquoted, and a line cut
// off. Every other sample must be kept.
const badExposition = `# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-1",Hostname="n1"} 41
DCGM_FI_DEV_GPU_TEMP{gpu="1",UUID="GPU-2",Hostname="n1"} 43
# HELP DCGM_FI_DEV_VGPU_LICENSE_STATUS vGPU License status
# TYPE DCGM_FI_DEV_VGPU_LICENSE_STATUS gauge
DCGM_FI_DEV_VGPU_LICENSE_STATUS{gpu="0",UUID="GPU-1",Hostname="n1"} ERROR - FAILED TO CONVERT TO STRING
DCGM_FI_DEV_VGPU_LICENSE_STATUS{gpu="1",UUID="GPU-2",Hostname="n1"} 1
# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).
# TYPE DCGM_FI_DEV_POWER_USAGE gauge
DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID=GPU-1,Hostname="n1"} 310.5
DCGM_FI_DEV_POWER_USAGE{gpu="1",UUID="GPU-2",Hostname="n1"} 290.25
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-1",Hostname="n1"} 1024
DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-2",Hostn
`

// A line that does not parse costs that line only: the target stays up, every other sample
// is delivered, and the status counts the lines and names the first.
func TestBadLinesCostThemselvesOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(badExposition))
	}))
	defer srv.Close()
	sc := scrapesource.New(scrapesource.Options{Static: []string{srv.URL}, Interval: 100 * time.Millisecond})
	var c collect
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx, c.deliver) }()
	require.Eventually(t, func() bool { return c.n() >= 2 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	got := map[string]float64{}
	for _, r := range gpus(c.groups[0]) {
		got[r.Sample.GPU+" "+r.Sample.Metric] = r.Sample.Value
	}
	assert.Equal(t, 1.0, own(c.groups[0])["up"], "up, where Prometheus fails the scrape")
	assert.Equal(t, map[string]float64{
		"GPU-1 DCGM_FI_DEV_GPU_TEMP": 41, "GPU-2 DCGM_FI_DEV_GPU_TEMP": 43,
		"GPU-2 DCGM_FI_DEV_VGPU_LICENSE_STATUS": 1,
		"GPU-2 DCGM_FI_DEV_POWER_USAGE":         290.25,
		"GPU-1 DCGM_FI_DEV_FB_USED":             1024,
	}, got)
	tg := sc.Targets()[0]
	assert.Equal(t, "up", tg.Health)
	assert.Empty(t, tg.LastError)
	assert.Equal(t, 5, tg.LastSamples)
	assert.Equal(t, 3, tg.LastDropped)
	assert.Equal(t, map[string]int{"line": 3}, tg.LastDroppedBy)
	assert.GreaterOrEqual(t, tg.DroppedTotal["line"], int64(6), "counted at every scrape")
	require.NotNil(t, tg.FirstBadLine)
	assert.Equal(t, 7, tg.FirstBadLine.Number)
	assert.Equal(t, `DCGM_FI_DEV_VGPU_LICENSE_STATUS{gpu="0",UUID="GPU-1",Hostname="n1"} ERROR - FAILED TO CONVERT TO STRING`, tg.FirstBadLine.Text)
	assert.Contains(t, tg.FirstBadLine.Reason, "value")
	assert.Empty(t, tg.Warning)
}

// A target whose every sample is dropped answers, but is never shown healthy without a
// word: its status says why.
func TestTargetWhoseSamplesAreAllDroppedSaysWhy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("DCGM_FI_DEV_GPU_TEMP{job=\"x\"} 41\nDCGM_FI_DEV_GPU_UTIL{job=\"x\"} 3\n"))
	}))
	defer srv.Close()
	sc := scrapesource.New(scrapesource.Options{Static: []string{srv.URL}, Interval: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sc.Run(ctx, func(context.Context, []telemetry.Reading) error { return nil })
	}()
	require.Eventually(t, func() bool { tg := sc.Targets(); return len(tg) == 1 && tg[0].Scrapes >= 1 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	tg := sc.Targets()[0]
	assert.Equal(t, 0, tg.LastSamples)
	assert.True(t, strings.HasPrefix(tg.Warning, "every sample of the last scrape dropped (2): no_device=2"), tg.Warning)
}

// A body over the size limit fails the scrape instead of being stored cut at a line.
func TestOversizedBodyFailsTheScrape(t *testing.T) {
	const maxBody = 1 << 20
	line := `DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-1",Hostname="n1"} 41` + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for range (maxBody / len(line)) + 2 {
			_, _ = w.Write([]byte(line))
		}
	}))
	defer srv.Close()
	sc := scrapesource.New(scrapesource.Options{Static: []string{srv.URL}, Interval: 5 * time.Second, MaxBody: maxBody})
	var c collect
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx, c.deliver) }()
	require.Eventually(t, func() bool { tg := sc.Targets(); return len(tg) == 1 && tg[0].Scrapes >= 1 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	tg := sc.Targets()[0]
	assert.Equal(t, "down", tg.Health)
	assert.Contains(t, tg.LastError, "body exceeds")
	require.Positive(t, c.n())
	assert.Empty(t, gpus(c.groups[0]), "no sample of the cut body")
	assert.Equal(t, 0.0, own(c.groups[0])["up"], "the target's own series say it is down")
}
