package apptest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/golang/snappy"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// The harness of the process tests and the benchmarks: the binary built once and run as
// processes, their logs, and what they serve.

// SyncBuffer is a buffer a process writes its output into while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines returns the JSON log lines whose msg is msg.
func (s *SyncBuffer) Lines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

var (
	binDir    string // the binary's, removed by Main
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds the telemetry binary once per test run, as go build does: the process tests
// and benchmarks run it as it ships, by the dozen in split mode, where the race detector's
// memory and CPU would be the test (the packages' own tests, and app's in-process ones, run
// under it).
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "telemetry-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "telemetry")
		cmd := exec.Command("go", "build", "-o", binPath, appPackage)
		cmd.Dir = startDir // a test may have moved to a directory of its own (t.Chdir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

const appPackage = "github.com/telemetry-pipeline/telemetry-pipeline/app"

// startDir is the test binary's directory as it started: its package's, in the module.
var startDir, _ = os.Getwd()

// Main runs a package's tests, then removes the binary Binary built: call it from the
// package's TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Proc is one running process of the binary.
type Proc struct {
	Name string
	Addr string // HTTP address
	Cmd  *exec.Cmd
	Log  string
	Done chan struct{}
	Err  error
}

// Spawn starts the binary as a process named name (for its log) with args, a free
// --http-addr and JSON logs into a file, and kills it when the test ends, showing the end of
// its log if the test failed.
func Spawn(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	addr := FreeAddr(t)
	if len(args) == 0 || args[0] != "simulate" { // the simulator serves on its --listen ports
		args = append([]string{"--http-addr=" + addr, "--log-format=json"}, args...)
	}
	cmd := exec.Command(Binary(t), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	p := &Proc{Name: name, Addr: addr, Cmd: cmd, Log: logPath, Done: make(chan struct{})}
	go func() {
		p.Err = cmd.Wait()
		logFile.Close()
		close(p.Done)
	}()
	t.Cleanup(func() {
		p.Signal(syscall.SIGKILL)
		<-p.Done
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("--- %s log (last 4000 bytes):\n%s", name, Tail(string(out), 4000))
		}
	})
	return p
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Signal sends sig to the process unless it has exited.
func (p *Proc) Signal(sig syscall.Signal) {
	select {
	case <-p.Done:
	default:
		_ = p.Cmd.Process.Signal(sig)
	}
}

// WaitReady waits until the process answers /ready with 200.
func (p *Proc) WaitReady(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + p.Addr + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "%s ready", p.Name)
}

// Wait waits for the process to exit and returns its error (nil for exit status 0).
func (p *Proc) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.Done:
		return p.Err
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s", p.Name, timeout)
		return nil
	}
}

// BundledCSV is the file the binary replays by default (app/data), read from beside this
// package's source.
var BundledCSV = func() []byte {
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "data", BundledCSVName))
	if err != nil {
		panic(err)
	}
	return b
}()

// BundledCSVName is the bundled file's name.
const BundledCSVName = "dcgm_metrics_20250718_134233.csv"

// Fetch GETs url and returns its body, failing the test on any error or a status other
// than 200.
func Fetch(t testing.TB, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return body
}

// ScrapeMetrics reads a process's /metrics, by family name.
func ScrapeMetrics(t testing.TB, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(Fetch(t, "http://"+addr+"/metrics")))
	require.NoError(t, err)
	return families
}

// Series returns the metric of a family whose labels include the pairs given, nil if none.
func Series(families map[string]*dto.MetricFamily, name string, labelPairs ...string) *dto.Metric {
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

// MetricValue is a counter's or gauge's value; a missing series fails the test.
func MetricValue(t testing.TB, families map[string]*dto.MetricFamily, name string, labelPairs ...string) float64 {
	t.Helper()
	m := Series(families, name, labelPairs...)
	require.NotNil(t, m, "%s%v is not served", name, labelPairs)
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

// WithAddedFields writes the bundled CSV as name with the fields added gives each GPU,
// from its utilisation.
func WithAddedFields(t testing.TB, name string, added func(util float64) map[string]float64) string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(BundledCSV)).ReadAll()
	require.NoError(t, err)
	for _, row := range rows[1:] {
		if row[1] != "DCGM_FI_DEV_GPU_UTIL" {
			continue
		}
		util, err := strconv.ParseFloat(row[10], 64)
		require.NoError(t, err)
		fields := added(util)
		for _, metric := range slices.Sorted(maps.Keys(fields)) {
			row := slices.Clone(row)
			row[1], row[10] = metric, strconv.FormatFloat(fields[metric], 'f', 3, 64)
			row[11] = strings.ReplaceAll(row[11], "DCGM_FI_DEV_GPU_UTIL", metric)
			rows = append(rows, row)
		}
	}
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	require.NoError(t, w.WriteAll(rows))
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
	return path
}

// TargetJSON is a target as GET /api/v1/targets shows it.
type TargetJSON struct {
	ScrapeURL          string  `json:"scrape_url"`
	Health             string  `json:"health"`
	LastError          string  `json:"last_error"`
	SamplesPerScrape   int     `json:"samples_per_scrape"`
	Scrapes            int64   `json:"scrapes"`
	MissedIntervals    int64   `json:"missed_intervals"`
	LastScrapeDuration float64 `json:"last_scrape_duration_seconds"`
	Labels             map[string]string
}

// GetJSON decodes the JSON answer of a GET into into; a status other than 200 is an error.
func GetJSON(c *http.Client, url string, into any) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

// WatchRSS samples a process's peak RSS (MB) until it exits, since it may exit by itself
// before it is asked; the function returned gives the last sample.
func WatchRSS(p *Proc) func() int64 {
	var peak atomic.Int64
	go func() {
		for {
			if mb, ok := PeakRSS(p.Cmd.Process.Pid); ok {
				peak.Store(max(peak.Load(), mb))
			}
			select {
			case <-p.Done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return peak.Load
}

// PeakRSS reads a process's peak resident memory (VmHWM) in MB; false when it has exited.
func PeakRSS(pid int) (int64, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb / 1024, err == nil
		}
	}
	return 0, false
}

// RemoteWriteBodyOf is a write request as a remote_write body: protobuf, snappy-compressed.
func RemoteWriteBodyOf(t testing.TB, wr *prompb.WriteRequest) []byte {
	raw, err := wr.Marshal()
	require.NoError(t, err)
	// Encode allocates for the worst case, more than the input: a benchmark holding a
	// week of requests would keep that much (some 25 GB) instead of what they compress to.
	return bytes.Clone(snappy.Encode(nil, raw))
}

// LoggedCount reads a number field of the last JSON log line of p with message msg.
func LoggedCount(b testing.TB, p *Proc, msg, field string) int64 {
	f, err := os.Open(p.Log)
	require.NoError(b, err)
	defer f.Close()
	var n int64 = -1
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			n = int64(line[field].(float64))
		}
	}
	require.GreaterOrEqual(b, n, int64(0), "%s logged %q", p.Name, msg)
	return n
}

// WaitUp waits until the process at base answers /ready with 200.
func WaitUp(b testing.TB, base string) {
	for range 200 {
		resp, err := http.Get(base + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("API did not come up")
}
