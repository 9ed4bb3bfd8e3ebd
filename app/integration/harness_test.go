package integration

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
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
	logs   *apptest.SyncBuffer
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
	p := &process{addr: addr, base: "http://" + addr, client: http.DefaultClient, done: make(chan struct{}), logs: &apptest.SyncBuffer{}}
	if len(args) == 0 || args[0] != "simulate" { // the simulator serves on its --listen ports
		args = append([]string{"--http-addr=" + addr}, args...)
	}
	p.cmd = exec.Command(apptest.Binary(t), args...)
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
			t.Logf("logs:\n%s", apptest.Tail(p.logs.String(), 16000))
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
	r := csv.NewReader(bytes.NewReader(apptest.BundledCSV))
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

// runOnce runs the binary with args to its end, within a minute, and returns its standard
// output and how it exited (nil for status 0; its standard error is in the error).
func runOnce(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, apptest.Binary(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, apptest.Tail(stderr.String(), 2000))
	}
	return stdout.String(), err
}

// TestMain removes the binary once the tests are done. The slow tests run in parallel
// (t.Parallel): each has its own database, Redis queue and processes, and most of their time
// is spent waiting on them.
func TestMain(m *testing.M) { apptest.Main(m) }
