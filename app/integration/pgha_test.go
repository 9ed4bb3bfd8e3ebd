package integration

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue/asynqtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// pgServer is a PostgreSQL server of the test's own, from Debian's binaries, run as the
// postgres user on a loopback port.
type pgServer struct {
	t         *testing.T
	bin, data string
	port      string
}

// pgBinDir is where Debian's PostgreSQL binaries are: the newest version's.
func pgBinDir(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(dirs) == 0 || os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL's server binaries (Debian's postgresql) and root, to run them as postgres, are required under CI=true")
		}
		t.Skip("needs Debian's postgresql binaries and root")
	}
	return dirs[len(dirs)-1]
}

// pgRoot is a directory the postgres user owns, removed when the test ends.
func pgRoot(t *testing.T) string {
	t.Helper()
	root, err := os.MkdirTemp("", "telemetry-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	require.NoError(t, exec.Command("chown", "postgres:postgres", root).Run())
	return root
}

func (s *pgServer) asPostgres(name string, args ...string) {
	s.t.Helper()
	out, err := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(s.bin, name)}, args...)...).CombinedOutput()
	require.NoError(s.t, err, "%s %v: %s", name, args, out)
}

// configure appends settings to the server's postgresql.conf (later lines win).
func (s *pgServer) configure(settings ...string) {
	s.t.Helper()
	f, err := os.OpenFile(filepath.Join(s.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(s.t, err)
	defer f.Close()
	_, err = f.WriteString("\n" + strings.Join(settings, "\n") + "\n")
	require.NoError(s.t, err)
}

func (s *pgServer) start() {
	s.t.Helper()
	s.asPostgres("pg_ctl", "-D", s.data, "-l", s.data+".log", "-w", "start")
	s.t.Cleanup(func() {
		_ = exec.Command("runuser", "-u", "postgres", "--", filepath.Join(s.bin, "pg_ctl"), "-D", s.data, "-m", "immediate", "stop").Run()
	})
}

// crash stops the server at once, without a checkpoint, as a machine failing would.
func (s *pgServer) crash() { s.asPostgres("pg_ctl", "-D", s.data, "-m", "immediate", "stop") }

// promote makes a standby the primary, as a failover manager does.
func (s *pgServer) promote() { s.asPostgres("pg_ctl", "-D", s.data, "-w", "promote") }

// url is the server's database name as a connection URL.
func (s *pgServer) url(db string) string {
	return "postgres://postgres@127.0.0.1:" + s.port + "/" + db + "?sslmode=disable"
}

func (s *pgServer) settings(port string) []string {
	return []string{"port = " + port, "listen_addresses = '127.0.0.1'", "unix_socket_directories = '" + filepath.Dir(s.data) + "'",
		"fsync = off", "max_wal_senders = 8", "wal_level = replica"}
}

// newPrimary initialises and starts a server whose commits wait for a standby to have
// them (synchronous_standby_names = '*'), as Patroni's synchronous mode or CloudNativePG's
// minSyncReplicas make them; with a database "telemetry".
func newPrimary(t *testing.T) *pgServer {
	t.Helper()
	s := &pgServer{t: t, bin: pgBinDir(t), data: filepath.Join(pgRoot(t), "primary")}
	s.asPostgres("initdb", "-D", s.data, "-A", "trust", "-U", "postgres", "--no-sync")
	_, s.port, _ = strings.Cut(freeAddr(t), ":")
	s.configure(s.settings(s.port)...)
	s.start()
	db, err := sql.Open("pgx", s.url("postgres"))
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec("CREATE DATABASE telemetry")
	require.NoError(t, err)
	s.configure("synchronous_standby_names = '*'")
	_, err = db.Exec("SELECT pg_reload_conf()")
	require.NoError(t, err)
	return s
}

// standby starts a streaming replica of s, from pg_basebackup, which commits do not wait for.
func (s *pgServer) standby(t *testing.T, name string) *pgServer {
	t.Helper()
	r := &pgServer{t: t, bin: s.bin, data: filepath.Join(filepath.Dir(s.data), name)}
	_, r.port, _ = strings.Cut(freeAddr(t), ":")
	r.asPostgres("pg_basebackup", "-h", "127.0.0.1", "-p", s.port, "-U", "postgres", "-D", r.data, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	r.configure(append(r.settings(r.port), "synchronous_standby_names = ''", "hot_standby = on")...)
	r.start()
	return r
}

// caughtUp waits until the standby has replayed everything the primary wrote.
func caughtUp(t *testing.T, primary, standby *pgServer) {
	t.Helper()
	p, err := sql.Open("pgx", primary.url("postgres"))
	require.NoError(t, err)
	defer p.Close()
	s, err := sql.Open("pgx", standby.url("postgres"))
	require.NoError(t, err)
	defer s.Close()
	var lsn string
	require.NoError(t, p.QueryRow("SELECT pg_current_wal_lsn()::text").Scan(&lsn))
	require.Eventually(t, func() bool {
		var done bool
		return s.QueryRow("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&done) == nil && done
	}, 30*time.Second, 50*time.Millisecond, "the standby replays up to %s", lsn)
}

// Collectors on a multi-host URL with target_session_attrs=read-write follow the primary
// through a failover with no restart and nothing lost or stored twice; an API reading from
// a streaming replica answers as one reading the primary.
func TestSplitModeOnPostgresFailover(t *testing.T) {
	slowTest(t, "a PostgreSQL failover")
	t.Parallel()
	primary := newPrimary(t)
	standby := primary.standby(t, "standby")
	writers := fmt.Sprintf("postgres://postgres@127.0.0.1:%s,127.0.0.1:%s/telemetry?sslmode=disable&target_session_attrs=read-write",
		primary.port, standby.port)
	p := &pipeline{dbURL: writers, redisURL: asynqtest.RedisURL(t)}
	p.queue = asynqtest.QueueName(t, p.redisURL)
	db, err := sql.Open("pgx", writers)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	p.db = db

	collectors := []*apptest.Proc{p.collector(t, "collector-a"), p.collector(t, "collector-b")}
	for _, c := range collectors {
		c.WaitReady(t)
	}
	streamers := startStreamers(t, p, 2, "--batch-size=20", "--interval=50ms")
	require.Eventually(t, func() bool { n, _ := p.counts(); return n > 200 }, 30*time.Second, 20*time.Millisecond, "streaming")
	primary.crash()
	standby.promote()
	for _, s := range streamers {
		require.NoError(t, s.Wait(t, 2*time.Minute))
	}
	p.requireExact(t, 3*time.Minute)

	// A new standby of the promoted server: an API reading from it answers as one reading
	// the primary, once it has caught up.
	replica := standby.standby(t, "replica")
	caughtUp(t, standby, replica)
	onPrimary := start(t, "--mode=api", "--database-url="+writers)
	onReplica := start(t, "--mode=api", "--database-url="+writers, "--database-read-url="+replica.url("telemetry"))
	var gpus struct {
		Data []struct {
			UUID string `json:"uuid"`
		} `json:"data"`
	}
	require.Equal(t, 200, onPrimary.get(t, "/api/v1/gpus?limit=3", &gpus))
	require.Len(t, gpus.Data, 3)
	for _, path := range []string{"/api/v1/stats", "/api/v1/gpus?limit=1000", "/api/v1/hosts",
		"/api/v1/gpus/" + gpus.Data[2].UUID + "/telemetry?limit=1000",
		"/api/v1/fleet/aggregate?metric=DCGM_FI_DEV_GPU_UTIL&by=host&start_time=2025-07-18T00:00:00Z&end_time=2025-07-19T00:00:00Z"} {
		var want, got any
		require.Equal(t, 200, onPrimary.get(t, path, &want), path)
		require.Equal(t, 200, onReplica.get(t, path, &got), path)
		assert.Equal(t, want, got, path)
	}
	assert.True(t, logged(collectors[0], "batch failed, will retry") || logged(collectors[1], "batch failed, will retry"),
		"the failover hit the collectors mid-run")
}
