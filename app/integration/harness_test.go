package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// process is the binary running with a free --http-addr and JSON logs, kept in memory.
type process struct {
	addr   string // 127.0.0.1:port
	base   string // http://127.0.0.1:port
	client *http.Client
	cmd    *exec.Cmd
	done   chan struct{}
	err    error // the exit's, once done
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns the JSON log lines whose msg is msg.
func (s *syncBuffer) lines(msg string) []map[string]any {
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

// start runs the binary with args (plus a free --http-addr and JSON logs at debug level)
// until the test ends or stop is called, and waits for its /health.
func start(t *testing.T, args ...string) *process {
	t.Helper()
	return startOver(t, "http", http.DefaultClient, args...)
}

// startOver is start, asking for /health as scheme with client.
func startOver(t *testing.T, scheme string, client *http.Client, args ...string) *process {
	t.Helper()
	p := launch(t, append([]string{"--log-format=json", "--log-level=debug"}, args...)...)
	p.base, p.client = scheme+"://"+p.addr, client
	require.Eventually(t, func() bool {
		select {
		case <-p.done:
			t.Fatalf("exited: %v\n%s", p.err, p.logs.String())
		default:
		}
		resp, err := client.Get(p.base + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "API up")
	return p
}

// launch runs the binary with args, and a free --http-addr unless it simulates, until the test ends or stop is
// called, its output kept in p.logs.
func launch(t *testing.T, args ...string) *process {
	t.Helper()
	addr := freeAddr(t)
	p := &process{addr: addr, base: "http://" + addr, client: http.DefaultClient, done: make(chan struct{}), logs: &syncBuffer{}}
	if len(args) == 0 || args[0] != "simulate" { // the simulator serves on its --listen ports
		args = append([]string{"--http-addr=" + addr}, args...)
	}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(time.Minute):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Error("process did not stop")
		}
		if t.Failed() {
			t.Logf("logs:\n%s", tail(p.logs.String(), 16000))
		}
	})
	return p
}

// stop ends the process as an orchestrator does (SIGTERM) and returns how it exited: nil
// for status 0.
func (p *process) stop(t *testing.T) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(t, time.Minute)
}

// wait waits for the process to exit by itself and returns how it exited.
func (p *process) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		if p.err != nil {
			// What the process said last: the one line a failed run ends with.
			lines := strings.Split(strings.TrimSpace(p.logs.String()), "\n")
			return fmt.Errorf("%w: %s", p.err, lines[len(lines)-1])
		}
		return nil
	case <-time.After(timeout):
		t.Fatalf("still running after %s", timeout)
		return nil
	}
}

func (p *process) get(t *testing.T, path string, into any) int {
	t.Helper()
	resp, err := p.client.Get(p.base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if into != nil {
		require.NoError(t, json.Unmarshal(body, into), string(body))
	}
	return resp.StatusCode
}

type stats struct {
	TotalRecords int64 `json:"total_records"`
	UniqueGPUs   int64 `json:"unique_gpus"`
	UniqueHosts  int64 `json:"unique_hosts"`
}

func (p *process) waitForSamples(t *testing.T, n int64) stats {
	t.Helper()
	var st stats
	require.Eventually(t, func() bool {
		p.get(t, "/api/v1/stats", &st)
		return st.TotalRecords >= n
	}, 60*time.Second, 50*time.Millisecond, "%d samples stored", n)
	return st
}

// csvCounts reads the bundled file directly: samples per GPU and timestamp.
func csvCounts(t *testing.T) map[string]map[string]int {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(bundledCSV))
	rows, err := r.ReadAll()
	require.NoError(t, err)
	counts := map[string]map[string]int{}
	for _, row := range rows[1:] {
		uuid, ts := row[4], row[0]
		if counts[uuid] == nil {
			counts[uuid] = map[string]int{}
		}
		counts[uuid][ts]++
	}
	return counts
}

// The slow tests run in parallel (t.Parallel): each has its own database, Redis queue and
// processes, and most of their time is spent waiting on them.

var (
	binDir    string // the binary's, made by TestMain
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the telemetry binary once per test run, as go build does: the tests here
// run the binary as it ships, by the dozen in split mode, where the race detector's memory
// and CPU would be the test (the packages' own tests, and app's in-process ones, run under
// it).
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "telemetry")
		out, err := exec.Command("go", "build", "-o", binPath, appPackage).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

const appPackage = "github.com/telemetry-pipeline/telemetry-pipeline/app"

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "telemetry-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// proc is one running process of the binary.
type proc struct {
	name string
	addr string // HTTP address
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func spawn(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	addr := freeAddr(t)
	if len(args) == 0 || args[0] != "simulate" { // the simulator serves on its --listen ports
		args = append([]string{"--http-addr=" + addr, "--log-format=json"}, args...)
	}
	cmd := exec.Command(binary(t), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	p := &proc{name: name, addr: addr, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("--- %s log (last 4000 bytes):\n%s", name, tail(string(out), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// waitReady waits until the process answers /ready with 200.
func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + p.addr + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "%s ready", p.name)
}

// wait waits for the process to exit and returns its error (nil for exit status 0).
func (p *proc) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s", p.name, timeout)
		return nil
	}
}

// freeAddr is a local address nobody listens on (apptest.FreeAddr).
func freeAddr(t testing.TB) string {
	t.Helper()
	return apptest.FreeAddr(t)
}

// waitListening waits until something accepts connections on addr.
func waitListening(t testing.TB, addr string) {
	t.Helper()
	apptest.WaitListening(t, addr)
}

// bundledCSV is the file the binary replays by default.
var bundledCSV = func() []byte {
	b, err := os.ReadFile(filepath.Join("..", "data", bundledCSVName))
	if err != nil {
		panic(err)
	}
	return b
}()

const bundledCSVName = "dcgm_metrics_20250718_134233.csv"

// runOnce runs the binary with args to its end, within a minute, and returns its standard
// output and how it exited (nil for status 0; its standard error is in the error).
func runOnce(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, tail(stderr.String(), 2000))
	}
	return stdout.String(), err
}
