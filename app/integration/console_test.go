package integration

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health/healthtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload/workloadtest"
)

// page is a tab of headless Chromium (Debian's) that records what the console logs as an
// error or a warning: console.error calls, uncaught exceptions, failed loads, policy
// violations.
type page struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newPage(t *testing.T) *page {
	t.Helper()
	bin := debianBinary(t, "chromium", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1000), chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	p := &page{ctx: ctx}
	messages := chromedp.Console(ctx) // starts the browser
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				p.mu.Lock()
				p.errors = append(p.errors, fmt.Sprintf("%s: %s (%s)", m.Type, m.Text, m.URL))
				p.mu.Unlock()
			}
		}
	}()
	return p
}

// noErrors checks that nothing was logged as an error so far.
func (p *page) noErrors(t *testing.T, where string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	assert.Empty(t, p.errors, "errors in the browser on %s", where)
}

func (p *page) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, actions...))
}

// eval is the value of a JavaScript expression in the page.
func eval[T any](t *testing.T, p *page, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

// open goes to the console's route (the part after #) and waits until its page has drawn
// what it loaded.
func (p *page) open(t *testing.T, route, pageName string) {
	t.Helper()
	eval[string](t, p, fmt.Sprintf("location.hash = %q", route))
	p.waitFor(t, fmt.Sprintf("telemetryConsole.page === %q && telemetryConsole.ready", pageName))
}

func (p *page) waitFor(t *testing.T, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(25*time.Second)))
	require.NoError(t, err, "waiting for %s", expr)
}

// screenshot saves the page as docs/console/<name>.png when TELEMETRY_SCREENSHOTS is set
// (make screenshots): the README shows them.
func (p *page) screenshot(t *testing.T, name string) {
	t.Helper()
	if os.Getenv("TELEMETRY_SCREENSHOTS") == "" {
		return
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644))
}

// screenshotDir is docs/console, found before any test changes directory.
var screenshotDir, _ = filepath.Abs(filepath.Join("..", "..", "docs", "console"))

func TestConsoleOnTheBundledFleet(t *testing.T) {
	slowTest(t, "every page of the console in Chromium")
	t.Chdir(t.TempDir()) // the default database, as `go run ./app` makes it
	proc := start(t)
	p := newPage(t)
	started := time.Now()
	p.do(t, chromedp.Navigate(proc.base+"/"))
	p.waitFor(t, `document.querySelectorAll('#heatmap .cell:not(.gap)').length === 247`)
	t.Logf("heatmap of 247 GPUs %s after opening the page", time.Since(started).Round(time.Millisecond))
	rows := eval[int](t, p, `document.querySelectorAll('#heatmap .row').length`)
	assert.Equal(t, 31, rows, "a row a host")
	firstPaint := eval[float64](t, p, `performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1`)
	t.Logf("first contentful paint after %.0f ms", firstPaint)
	assert.Positive(t, firstPaint, "the page painted")

	// The heatmap follows the stream: a later refresh shows newer samples.
	before := eval[string](t, p, `[...document.querySelectorAll('#heatmap .cell:not(.gap)')].map(c => c.title).join('|')`)
	p.waitFor(t, `document.querySelector('#heatmap').dataset.refreshes >= 3`)
	p.waitFor(t, fmt.Sprintf(`[...document.querySelectorAll('#heatmap .cell:not(.gap)')].map(c => c.title).join('|') !== %q`, before))
	empty := eval[int](t, p, `document.querySelectorAll('#heatmap .cell.empty').length`)
	assert.Zero(t, empty, "every device has a recent sample")
	p.screenshot(t, "fleet")
	p.noErrors(t, "the fleet page")

	// Clicking a GPU opens its charts.
	key := eval[string](t, p, `document.querySelector('#heatmap .cell:not(.gap)').dataset.key`)
	p.do(t, chromedp.Click(chromedp.CSS(`#heatmap a.cell:not(.gap)`)))
	p.waitFor(t, `telemetryConsole.page === 'gpu' && telemetryConsole.ready && Object.keys(telemetryConsole.charts).length === 10`)
	hash := eval[string](t, p, `location.hash`)
	assert.Equal(t, "#/gpu/"+url.PathEscape(key), hash)
	p.screenshot(t, "gpu")

	// A fixed window's charts hold exactly the API's samples of it.
	var st struct {
		Oldest time.Time `json:"oldest_sample"`
		Newest time.Time `json:"newest_sample"`
	}
	require.Eventually(t, func() bool {
		proc.get(t, "/api/v1/stats", &st)
		return st.Newest.Sub(st.Oldest) > 12*time.Second
	}, 30*time.Second, 200*time.Millisecond)
	// Whole seconds, as a JavaScript date holds no microseconds.
	from, to := st.Oldest.Truncate(time.Second).Format(time.RFC3339), st.Oldest.Truncate(time.Second).Add(10*time.Second).Format(time.RFC3339)
	p.open(t, fmt.Sprintf("#/gpu/%s?start=%s&end=%s", key, from, to), "gpu")
	charted := eval[map[string][2][]float64](t, p, `Object.fromEntries(Object.entries(telemetryConsole.charts).map(([m, u]) => [m, u.data]))`)
	want := map[string][2][]float64{}
	cursor := ""
	for {
		var page struct {
			Data []struct {
				Timestamp time.Time `json:"timestamp"`
				Metric    string    `json:"metric"`
				Value     float64   `json:"value"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		q := url.Values{"start_time": {from}, "end_time": {to}, "limit": {"1000"}, "cursor": {cursor}}
		require.Equal(t, 200, proc.get(t, "/api/v1/gpus/"+key+"/telemetry?"+q.Encode(), &page))
		for _, s := range page.Data {
			w := want[s.Metric]
			w[0] = append(w[0], float64(s.Timestamp.UnixMilli())/1000) // a JavaScript date holds milliseconds
			w[1] = append(w[1], s.Value)
			want[s.Metric] = w
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	require.Len(t, want, 10)
	assert.Equal(t, want, charted, "each chart's points are the API's samples")
	p.noErrors(t, "the device page")

	p.open(t, "#/health?range=1h", "health")
	p.noErrors(t, "the idle and unhealthy page")
	p.open(t, "#/usage?range=1h&by=host", "usage")
	groups := eval[int](t, p, `document.querySelectorAll('#report tbody tr[data-group]').length`)
	assert.Equal(t, 31, groups, "a row a host")
	p.screenshot(t, "usage")
	p.noErrors(t, "the usage page")
}

func TestConsoleNamesThePlantedProblems(t *testing.T) {
	t0 := time.Date(2025, 7, 18, 12, 0, 0, 0, time.UTC)
	dbURL := sqlstoretest.SQLiteURL(t)
	store, err := sqlstore.Open(context.Background(), dbURL, sqlstore.Options{})
	require.NoError(t, err)
	_, err = store.WriteBatch(context.Background(), healthtest.TroubledFleet(t0))
	require.NoError(t, err)
	require.NoError(t, store.Close())
	proc := start(t, "--mode=api", "--database-url="+dbURL)

	p := newPage(t)
	p.do(t, chromedp.Navigate(proc.base+"/"))
	p.waitFor(t, `document.querySelectorAll('#heatmap .cell:not(.gap)').length === 4`)
	window := fmt.Sprintf("start=%s&end=%s", t0.Format(time.RFC3339), t0.Add(2*time.Hour).Format(time.RFC3339))
	p.open(t, "#/health?"+window, "health")
	rows := func(table string) []string {
		return eval[[]string](t, p, fmt.Sprintf(`[...document.querySelectorAll('#%s tbody tr')].map(r =>
			[r.dataset.key, r.dataset.kind, r.cells[3].textContent, r.querySelector('.start').textContent, r.querySelector('.end').textContent].join(' '))`, table))
	}
	at := func(min int) string {
		return strings.Replace(t0.Add(time.Duration(min)*time.Minute).Format(time.RFC3339), "T", " ", 1)
	}
	assert.Equal(t, []string{"GPU-idle idle allocated " + at(30) + " " + at(90)}, rows("idle"))
	assert.Equal(t, []string{"GPU-xid xid 79 " + at(40) + " " + at(45), "GPU-hot throttle hw_thermal_slowdown " + at(60) + " " + at(75)}, rows("events"))
	p.screenshot(t, "health")
	p.noErrors(t, "the idle and unhealthy page")

	// The device page lists its event and shades it on the charts.
	p.open(t, "#/gpu/GPU-xid?"+window, "gpu")
	events := eval[[]string](t, p, `[...document.querySelectorAll('#events tbody tr')].map(r => r.dataset.kind + ' ' + r.querySelector('.start').textContent)`)
	assert.Equal(t, []string{"xid " + at(40)}, events)
	charts := eval[int](t, p, `Object.keys(telemetryConsole.charts).length`)
	assert.Equal(t, 3, charts, "the fixture's three metrics")
	p.noErrors(t, "the device page")

	p.open(t, "#/usage?by=pod&"+window, "usage")
	groups := eval[[]string](t, p, `[...document.querySelectorAll('#report tbody tr[data-group]')].map(r => r.dataset.group)`)
	assert.Equal(t, []string{"", "team-a/notebook"}, groups, "the samples no pod held, and the notebook's")
	p.noErrors(t, "the usage page")

	// A device that does not exist: the page says so (the browser logs the 404 too).
	eval[string](t, p, `location.hash = "#/gpu/GPU-nope"`)
	p.waitFor(t, `document.getElementById('page-error')?.textContent.includes('GPU-nope')`)
}

// A MIG GPU whose two instances are held by pods, and a GPU time-sliced by three pods, one
// with a long name: the instance page names the instance and links its GPU, the GPU page
// links its instances, usage splits the shared GPU three ways, the idle instance shows with
// its pod, and long names are cut with an ellipsis, whole on hover.
func TestConsoleShowsMIGInstancesAndATimeSlicedGPU(t *testing.T) {
	t0 := time.Date(2025, 7, 18, 12, 0, 0, 0, time.UTC)
	dbURL := sqlstoretest.SQLiteURL(t)
	store, err := sqlstore.Open(context.Background(), dbURL, sqlstore.Options{})
	require.NoError(t, err)
	longPod := "llm-inference-server-with-a-very-long-deployment-name-7d9f8c6b5-x2x4q"
	mig1 := telemetry.GPU{UUID: "GPU-mig", Instance: "1", InstanceProfile: "3g.40gb", Hostname: "node-a800", Index: 0, ModelName: "NVIDIA A800-SXM4-80GB"}
	mig2 := mig1
	mig2.Instance, mig2.InstanceProfile = "2", "4g.40gb"
	shared := telemetry.GPU{UUID: "GPU-shared", Hostname: "node-l40s", Index: 0, ModelName: "NVIDIA L40S"}
	b := telemetry.Batch{ID: "mig-and-sliced", GPUs: []telemetry.GPU{mig1, mig2, shared}}
	for s := 0; s < 3600; s += 30 {
		at := t0.Add(time.Duration(s) * time.Second)
		b.Samples = append(b.Samples,
			telemetry.Sample{GPU: mig1.Key(), Metric: "DCGM_FI_PROF_GR_ENGINE_ACTIVE", Time: at, Value: 0.8, Pod: "llama", Namespace: "serving"},
			telemetry.Sample{GPU: mig2.Key(), Metric: "DCGM_FI_PROF_GR_ENGINE_ACTIVE", Time: at, Value: 0, Pod: "mistral", Namespace: "serving"})
		for _, pod := range []string{"chat", "embed", longPod} {
			b.Samples = append(b.Samples, telemetry.Sample{GPU: shared.Key(), Metric: "DCGM_FI_DEV_GPU_UTIL", Time: at, Value: 60, Pod: pod, Namespace: "inference"})
		}
	}
	_, err = store.WriteBatch(context.Background(), b)
	require.NoError(t, err)
	rec := workload.NewRecorder(query.NewFleet(store, store), store, store, workload.Config{Settle: time.Second}, slog.New(slog.DiscardHandler))
	workloadtest.RecordAll(t, rec, time.Now())
	require.NoError(t, store.Close())
	proc := start(t, "--mode=api", "--database-url="+dbURL)
	window := fmt.Sprintf("start=%s&end=%s", t0.Format(time.RFC3339), t0.Add(time.Hour).Format(time.RFC3339))

	p := newPage(t)
	p.do(t, chromedp.Navigate(proc.base+"/"))
	p.waitFor(t, `document.querySelectorAll('#heatmap .cell:not(.gap)').length === 3`)

	p.open(t, "#/gpu/GPU-mig/1?"+window, "gpu")
	assert.Equal(t, "node-a800 · GPU 0 · MIG 1 (3g.40gb)", eval[string](t, p, `document.querySelector('#title').textContent`))
	facts := eval[string](t, p, `document.querySelector('#facts').textContent`)
	assert.Contains(t, facts, "GPU instance 1, profile 3g.40gb")
	assert.Equal(t, "#/gpu/GPU-mig", eval[string](t, p, `document.querySelector('#facts a.parent').getAttribute('href')`))
	assert.Equal(t, 1, eval[int](t, p, `Object.keys(telemetryConsole.charts).length`), "the instance's own metric")
	p.noErrors(t, "a MIG instance's page")

	p.open(t, "#/gpu/GPU-mig?"+window, "gpu")
	links := eval[[]string](t, p, `[...document.querySelectorAll('#facts .instances a')].map(a => a.textContent + ' ' + a.getAttribute('href'))`)
	assert.Equal(t, []string{"1 (3g.40gb) #/gpu/GPU-mig/1", "2 (4g.40gb) #/gpu/GPU-mig/2"}, links, "the GPU links its instances")

	p.open(t, "#/gpu/GPU-shared?"+window, "gpu")
	assert.Equal(t, 1, eval[int](t, p, `Object.keys(telemetryConsole.charts).length`))
	p.noErrors(t, "a time-sliced GPU's page")

	p.open(t, "#/usage?by=pod&"+window, "usage")
	hours := eval[map[string]string](t, p, `Object.fromEntries([...document.querySelectorAll('#report tbody tr[data-group]')].map(r => [r.dataset.group, r.querySelector('.gpu-hours').textContent]))`)
	assert.Equal(t, map[string]string{"inference/chat": "0.33", "inference/embed": "0.33", "inference/" + longPod: "0.33",
		"serving/llama": "0.43", "serving/mistral": "0.57"}, hours, "a third of the shared GPU each; the instances by their slices")
	cut := eval[[]any](t, p, fmt.Sprintf(`(() => { const c = document.querySelector('#report tr[data-group="inference/%s"] .clip');
		return [c.scrollWidth > c.clientWidth, c.title]; })()`, longPod))
	assert.Equal(t, []any{true, "inference/" + longPod}, cut, "a long name cut, whole on hover")
	p.noErrors(t, "the usage page")

	// Workload records: a row per pod and device, the profiling fields this exporter does
	// not send shown as not reported, never as 0.
	p.open(t, "#/workloads", "workloads")
	pods := eval[[]string](t, p, `[...document.querySelectorAll('#records tbody tr')].map(r => r.dataset.pod + ' ' + r.cells[1].textContent + ' ' + r.cells[8].textContent).sort()`)
	assert.Equal(t, []string{"chat node-l40s n/r", "embed node-l40s n/r", "llama node-a800 · MIG 1 n/r", longPod + " node-l40s n/r", "mistral node-a800 · MIG 2 n/r"}, pods)
	p.screenshot(t, "workloads")
	p.noErrors(t, "the workloads page")

	p.open(t, "#/health?"+window, "health")
	idle := eval[[]string](t, p, `[...document.querySelectorAll('#idle tbody tr')].map(r => r.dataset.key + ' ' + r.cells[3].textContent + ' ' + r.cells[7].textContent)`)
	assert.Equal(t, []string{"GPU-mig/2 allocated serving/mistral"}, idle, "the idle MIG instance and who holds it")
	p.noErrors(t, "the idle page")
}

// The problems page lists the open problems by what to do, the odd ones out and the fields
// not reported; the efficiency page each pod's share of its GPUs' peaks and its class.
func TestConsoleShowsProblemsOutliersAndEfficiency(t *testing.T) {
	t0 := time.Date(2025, 7, 18, 12, 0, 0, 0, time.UTC)
	dbURL := sqlstoretest.SQLiteURL(t)
	store, err := sqlstore.Open(context.Background(), dbURL, sqlstore.Options{})
	require.NoError(t, err)
	// An XID 63 with rows pending remap, still on at the window's end: reset the GPU.
	remap := telemetry.GPU{UUID: "GPU-remap", Hostname: "h9", Index: 0, ModelName: "NVIDIA H100 80GB HBM3"}
	pending := telemetry.Batch{ID: "remap", GPUs: []telemetry.GPU{remap}}
	for s := 0; s < 7200; s += 30 {
		xid, rows := 0.0, 0.0
		if s >= 3600 {
			xid, rows = 63, 1
		}
		at := t0.Add(time.Duration(s) * time.Second)
		pending.Samples = append(pending.Samples,
			telemetry.Sample{GPU: remap.UUID, Metric: "DCGM_FI_DEV_XID_ERRORS", Time: at, Value: xid},
			telemetry.Sample{GPU: remap.UUID, Metric: "DCGM_FI_DEV_ROW_REMAP_PENDING", Time: at, Value: rows})
	}
	for _, b := range []telemetry.Batch{healthtest.OddOneOut(t0, true), healthtest.Efficiency(t0), healthtest.Coverage(t0), pending} {
		_, err = store.WriteBatch(context.Background(), b)
		require.NoError(t, err)
	}
	require.NoError(t, store.Close())
	proc := start(t, "--mode=api", "--database-url="+dbURL)
	window := fmt.Sprintf("start=%s&end=%s", t0.Format(time.RFC3339), t0.Add(2*time.Hour).Format(time.RFC3339))

	p := newPage(t)
	p.do(t, chromedp.Navigate(proc.base+"/"))
	p.open(t, "#/problems?"+window, "problems")
	open := eval[[]string](t, p, `[...document.querySelectorAll('#open tbody tr')].map(r => [r.dataset.action, r.dataset.key, r.dataset.kind].join(' '))`)
	assert.ElementsMatch(t, []string{"reset_gpu GPU-remap xid", "reset_gpu GPU-remap row_remap_pending"}, open)
	outliers := eval[[]string](t, p, `[...document.querySelectorAll('#outliers tbody tr')].map(r => r.dataset.key + ' ' + r.dataset.signal)`)
	require.NotEmpty(t, outliers)
	assert.Equal(t, healthtest.OddGPU+" sbe_ecc_rate", outliers[0], "the GPU whose ECC errors climb, first")
	gaps := eval[[]string](t, p, `[...document.querySelectorAll('#gaps tbody tr')].map(r => r.dataset.key + ' ' + r.dataset.field)`)
	assert.Contains(t, gaps, "GPU-nopower DCGM_FI_DEV_POWER_USAGE", "power at 0 throughout")
	p.screenshot(t, "problems")
	p.noErrors(t, "the problems page")

	p.open(t, "#/efficiency?by=pod&"+window, "efficiency")
	classes := eval[map[string]string](t, p, `Object.fromEntries([...document.querySelectorAll('#report tbody tr')].map(r => [r.dataset.group, r.dataset.class]))`)
	assert.Equal(t, "active", classes["team-a/train"])
	assert.Equal(t, "held_no_kernels", classes["team-b/notebook"])
	assert.Equal(t, "memory_held_compute_idle", classes["team-b/cache"])
	assert.Equal(t, "not_reported", classes["team-c/job"])
	p.screenshot(t, "efficiency")
	p.noErrors(t, "the efficiency page")

	p.open(t, "#/usage?by=pod&"+window, "usage")
	classes = eval[map[string]string](t, p, `Object.fromEntries([...document.querySelectorAll('#report tbody tr[data-group]')].map(r => [r.dataset.group, r.dataset.class]))`)
	assert.Equal(t, "held_no_kernels", classes["team-b/notebook"], "the usage report says how well: %v", classes)
	assert.Equal(t, "not_reported", classes["team-c/job"])
	p.noErrors(t, "the usage page")
}
