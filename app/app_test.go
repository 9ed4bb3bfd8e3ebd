package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/memqueue"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/promexport"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/remotewrite"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/scrapesource"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
	"github.com/telemetry-pipeline/telemetry-pipeline/config"
)

func TestStartupFailuresAreOneLine(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.csv")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	badCatalog := filepath.Join(dir, "xids.json")
	require.NoError(t, os.WriteFile(badCatalog, []byte(`[{"code": 79, "class": "hardware", "action": "rma"}]`), 0o644))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--csv=" + filepath.Join(dir, "nope.csv")}, "nope.csv: no such file or directory"},
		{"empty file", []string{"--csv=" + empty}, "empty.csv: file is empty"},
		{"unreachable database", []string{"--database-url=postgres://postgres@127.0.0.1:1/x?sslmode=disable", "--db-connect-timeout=1s"}, "unreachable"},
		{"bad config", []string{"--batch-size=0", "--mode=nope"}, "invalid configuration"},
		// A misconfiguration names its real cause at once, without waiting out retries.
		{"missing file before a bad database", []string{"--csv=" + filepath.Join(dir, "nope.csv"),
			"--database-url=sqlite:" + filepath.Join(dir, "nodir", "x.db")}, "nope.csv: no such file or directory"},
		// A database that does not exist is created (sqlstore's TestOpenCreatesAMissingDatabase
		// has the role that may not, told how to create it).
		{"SQLite directory missing", []string{"--database-url=sqlite:" + filepath.Join(dir, "nodir", "x.db")}, "nodir: no such file or directory"},
		{"XID catalog missing", []string{"--xid-catalog=" + filepath.Join(dir, "nope.json")}, "--xid-catalog: open " + filepath.Join(dir, "nope.json") + ": no such file or directory"},
		{"XID catalog wrong", []string{"--xid-catalog=" + badCatalog}, `code 79: action "rma" is not one of`},
		{"SQLite path is a directory", []string{"--database-url=sqlite:" + dir}, "is a directory, not a database file"},
	}
	if url, ok := passwordRedis(t); ok {
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{"wrong Redis password", []string{"--mode=streamer", "--redis-url=" + url}, "WRONGPASS"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--database-url=" + sqlstoretest.SQLiteURL(t), "--http-addr=" + apptest.FreeAddr(t)}, tt.args...)
			var logs bytes.Buffer
			began := time.Now()
			err := run(context.Background(), args, io.Discard, &logs)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "\n")
			if tt.name != "unreachable database" {
				assert.Less(t, time.Since(began), 5*time.Second, "failed at once")
			}
		})
	}
}

// passwordRedis starts a Redis that requires a password and returns a URL with a wrong one.
func passwordRedis(t *testing.T) (string, bool) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is required under CI=true")
		}
		return "", false
	}
	addr := apptest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--requirepass", "secret", "--save", "", "--dir", t.TempDir())
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	apptest.WaitListening(t, addr)
	return "redis://:wrong@" + addr + "/0", true
}

func TestHelpAndVersionOfModes(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, &out, io.Discard)
	assert.ErrorIs(t, err, errHelp())
	assert.Contains(t, out.String(), "--mode")
	assert.Contains(t, out.String(), "TELEMETRY_DATABASE_URL")
	for mode := range modes {
		assert.Contains(t, out.String(), fmt.Sprintf("  %s ", mode))
	}
}

func errHelp() error { return config.ErrHelp }

func TestConnectionPoolFollowsModeAndCores(t *testing.T) {
	api := max(2*runtime.GOMAXPROCS(0), 4)
	for _, tt := range []struct {
		mode config.Mode
		set  int
		want int
	}{
		{config.ModeAPI, 0, api},
		{config.ModeCollector, 0, 3 + 4},
		{config.ModeAll, 0, api + 3 + 4},
		{config.ModeMigrate, 0, 2},
		{config.ModeAPI, 7, 7},
	} {
		w := wiring{cfg: config.Config{Mode: tt.mode, CollectorWorkers: 3, DBMaxConns: tt.set}}
		assert.Equal(t, tt.want, w.dbConns(), "mode %s, --db-max-conns=%d", tt.mode, tt.set)
	}
}

func TestMigrateModeAppliesAndExits(t *testing.T) {
	for name, newURL := range map[string]func(testing.TB) string{
		"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			dbURL := newURL(t)
			done := make(chan error, 1)
			go func() {
				done <- run(context.Background(), []string{"--mode=migrate", "--database-url=" + dbURL}, io.Discard, io.Discard)
			}()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Fatal("mode migrate did not exit")
			}
			store, err := sqlstore.Open(context.Background(), dbURL, sqlstore.Options{})
			require.NoError(t, err)
			defer store.Close()
			_, err = store.Stats(context.Background())
			assert.NoError(t, err, "the schema is there")
		})
	}
}

// The API collects garbage at 200 % heap growth, every other mode at 400 %; GOGC decides
// when set.
func TestGCTargetFollowsMode(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	log := slog.New(slog.DiscardHandler)
	t.Setenv("GOGC", "")
	for mode, want := range map[config.Mode]int{config.ModeAPI: 200, config.ModeAll: 400, config.ModeCollector: 400, config.ModeStreamer: 400} {
		tuneGC(log, mode)
		assert.Equal(t, want, debug.SetGCPercent(100), mode)
	}
	t.Setenv("GOGC", "150")
	tuneGC(log, config.ModeAPI)
	assert.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: left as it was")
}

// The pipeline's dashboard asks only for series its processes serve.
func TestPipelineDashboardQueriesServedMetrics(t *testing.T) {
	served := map[string]bool{"telemetry_http_request_duration_seconds_bucket": true, "telemetry_batch_write_duration_seconds_bucket": true,
		"process_resident_memory_bytes": true, "process_cpu_seconds_total": true, "go_memstats_heap_inuse_bytes": true}
	// Every component's collector, as the modes together register them (wiring.collectors).
	for _, c := range []prometheus.Collector{promexport.Streaming(nil, nil), promexport.Ingest(nil),
		(*sqlstore.Store)(nil).MaintenanceMetrics(), (*memqueue.Topic)(nil).Metrics(), (*asynqqueue.Queue)(nil).Metrics(),
		(*remotewrite.Receiver)(nil).Metrics(), (*scrapesource.Scraper)(nil).Metrics()} {
		descs := make(chan *prometheus.Desc, 16)
		c.Describe(descs)
		close(descs)
		for d := range descs {
			name, _, _ := strings.Cut(strings.TrimPrefix(d.String(), `Desc{fqName: "`), `"`)
			served[name] = true
		}
	}
	p := parser.NewParser(parser.Options{})
	for title, q := range apptest.DashboardQueries(t, "../deploy/helm/telemetry-pipeline/files/dashboards/pipeline-health.json") {
		expr, err := p.ParseExpr(q)
		require.NoError(t, err, "%s: %s", title, q)
		for _, ms := range parser.ExtractSelectors(expr) {
			for _, m := range ms {
				if m.Name == model.MetricNameLabel {
					assert.True(t, served[m.Value], "%s: %s is not served by /metrics", title, m.Value)
				}
			}
		}
	}
}

func TestHashPassword(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, hashPassword(strings.NewReader("s3cret pass\n"), &out, nil))
	hash := strings.TrimSpace(out.String())
	assert.NoError(t, bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret pass")), "the hash is of the line, without its newline")
	assert.ErrorContains(t, hashPassword(strings.NewReader(""), &out, nil), "no password")
	assert.ErrorContains(t, hashPassword(strings.NewReader(strings.Repeat("x", 80)), &out, nil), "72 bytes")
	assert.ErrorContains(t, hashPassword(strings.NewReader("x"), &out, []string{"x"}), "stdin")
}

// Mode all in this process, where the race detector sees every component at once: the
// streamer, the in-process queue, the collector, the compactor and the API under reads,
// then a graceful stop. (app/integration runs the built binary, without the detector.)
func TestModeAllInProcessUnderReads(t *testing.T) {
	addr := apptest.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--http-addr=" + addr, "--database-url=" + sqlstoretest.SQLiteURL(t), "--speed=0",
			"--batch-size=500", "--compact-interval=100ms"}, io.Discard, io.Discard)
	}()
	base := "http://" + addr
	read := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	var st struct {
		TotalRecords int64 `json:"total_records"`
	}
	require.Eventually(t, func() bool {
		code, body := read("/api/v1/stats")
		return code == http.StatusOK && json.Unmarshal([]byte(body), &st) == nil && st.TotalRecords >= 20_000
	}, time.Minute, 50*time.Millisecond, "20,000 samples stored")
	gpu := "GPU-5fd4f087-86f3-7a43-b711-4771313afc50"
	for _, path := range []string{"/api/v1/gpus?limit=10", "/api/v1/gpus/" + gpu + "/telemetry?limit=100",
		"/api/v1/gpus/" + gpu + "/telemetry/aggregate?step=1s&agg=max", "/api/v1/fleet/latest?metric=DCGM_FI_DEV_GPU_TEMP",
		"/prometheus/api/v1/query?query=count(DCGM_FI_DEV_GPU_UTIL)", "/metrics"} {
		code, body := read(path)
		assert.Equal(t, http.StatusOK, code, "%s: %s", path, body)
	}
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "a graceful stop")
	case <-time.After(time.Minute):
		t.Fatal("did not stop")
	}
}
