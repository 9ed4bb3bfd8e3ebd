package config_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/config"
)

// clearEnv hides the variables config reads, so that the machine's own do not leak in.
func clearEnv(t *testing.T) {
	for _, key := range []string{"DATABASE_URL", "REDIS_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_SSL_MODE", "TELEMETRY_CONFIG"} {
		t.Setenv(key, "")
	}
	for _, kv := range os.Environ() {
		if k, _, _ := cutEq(kv); len(k) > 10 && k[:10] == "TELEMETRY_" {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func cutEq(kv string) (string, string, bool) {
	for i := range kv {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

func load(t *testing.T, args ...string) (config.Config, error) {
	t.Helper()
	return config.Load(args, &bytes.Buffer{})
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	c, err := load(t)
	require.NoError(t, err)
	assert.Equal(t, config.Config{
		Mode: config.ModeAll, HTTPAddr: ":8080", DatabaseURL: "sqlite:telemetry.db", DBConnectTimeout: 15 * time.Second,
		Loop: true, BatchSize: 5000, Timestamps: "now", Speed: 1, ShardIndex: 0, ShardCount: 1,
		QueueName: "telemetry", MaxBacklog: 100, Passes: 0, PromQLSubqueryStep: time.Minute, FutureTolerance: 10 * time.Minute, PromQLMaxQueryLength: 16384, PromQLMaxDepth: 128, PromQLMaxSamples: 2_000_000,
		CollectorWorkers: 3, QueueCapacity: 16, CompactInterval: 5 * time.Second, Retention: config.RetentionAuto, Retention5m: config.RetentionAuto, Retention1h: config.RetentionAuto, RetentionWorkloads: 2 * 365 * 24 * time.Hour, RetentionInterval: time.Minute, WorkloadInterval: time.Minute, ShutdownTimeout: 30 * time.Second, LogLevel: slog.LevelInfo, LogFormat: "text",
		ScrapeInterval: 15 * time.Second, ScrapeTimeout: 10 * time.Second, ScrapeJob: "dcgm-exporter", RemoteWriteTimeout: 10 * time.Second, RemoteWriteMaxNewDevices: 10000, RemoteWriteMaxBody: 32 << 20, ScrapeBodySizeLimit: 16 << 20,
	}, c)
	assert.True(t, c.Bundled(), "no source named: the bundled sample streams")
}

func TestLiveSources(t *testing.T) {
	clearEnv(t)
	t.Setenv("TELEMETRY_SCRAPE_TARGETS", "h1:9400, ,http://h2:9400/metrics")
	c, err := load(t, "--scrape-dns=dcgm-exporter.gpu-operator.svc:9400", "--remote-write", "--scrape-interval=5s", "--scrape-timeout=2s")
	require.NoError(t, err)
	assert.Equal(t, []string{"h1:9400", "http://h2:9400/metrics"}, c.ScrapeTargets)
	assert.Equal(t, []string{"dcgm-exporter.gpu-operator.svc:9400"}, c.ScrapeDNS)
	assert.True(t, c.Scrapes())
	assert.True(t, c.RemoteWrite)
	assert.False(t, c.Bundled(), "a live source named: no bundled sample beside it")

	_, err = load(t, "--scrape-targets=h:9400", "--scrape-interval=5s", "--scrape-timeout=6s")
	assert.ErrorContains(t, err, "scrape-timeout: must be at most scrape-interval")
	c, err = load(t, "--scrape-targets=h:9400", "--scrape-interval=5s")
	require.NoError(t, err, "the default timeout follows a shorter interval, as in Prometheus")
	assert.Equal(t, 5*time.Second, c.ScrapeTimeout)
	_, err = load(t, "--mode=collector", "--remote-write", "--database-url=sqlite:x.db", "--redis-url=redis://h:6379/0")
	assert.ErrorContains(t, err, "scraping and remote_write run in modes all and streamer")
}

func TestPrecedence(t *testing.T) {
	clearEnv(t)
	file := filepath.Join(t.TempDir(), "telemetry.yaml")
	require.NoError(t, os.WriteFile(file, []byte("batch-size: 10\ninterval: 5s\nshard: 1/4\nlog-level: warn\n"), 0o644))
	t.Setenv("TELEMETRY_BATCH_SIZE", "20")
	t.Setenv("TELEMETRY_LOOP", "false")
	t.Setenv("TELEMETRY_INTERVAL", "0")
	c, err := load(t, "--config", file, "--batch-size=30", "--timestamps", "CSV")
	require.NoError(t, err)
	assert.Equal(t, 30, c.BatchSize, "flag beats env")
	assert.False(t, c.Loop, "env beats default")
	assert.Equal(t, time.Duration(0), c.Interval, "env beats file")
	assert.Equal(t, [2]int{1, 4}, [2]int{c.ShardIndex, c.ShardCount}, "file beats default")
	assert.Equal(t, slog.LevelWarn, c.LogLevel)
	assert.Equal(t, "csv", c.Timestamps)
}

func TestDatabaseURLSources(t *testing.T) {
	clearEnv(t)
	t.Setenv("DB_HOST", "db.internal")
	t.Setenv("DB_USER", "telemetry")
	t.Setenv("DB_PASSWORD", "s3cret")
	t.Setenv("DB_NAME", "gpu")
	c, err := load(t, "--mode=api")
	require.NoError(t, err)
	assert.Equal(t, "postgres://telemetry:s3cret@db.internal:5432/gpu?sslmode=disable", c.DatabaseURL)

	t.Setenv("DATABASE_URL", "postgres://a@b/c")
	c, err = load(t)
	require.NoError(t, err)
	assert.Equal(t, "postgres://a@b/c", c.DatabaseURL, "DATABASE_URL beats DB_*")

	t.Setenv("TELEMETRY_DATABASE_URL", "sqlite:/tmp/x.db")
	c, err = load(t)
	require.NoError(t, err)
	assert.Equal(t, "sqlite:/tmp/x.db", c.DatabaseURL)
}

func TestEveryProblemNamed(t *testing.T) {
	clearEnv(t)
	t.Setenv("TELEMETRY_INTERVAL", "soon")
	t.Setenv("TELEMETRY_SPEED", "fast")
	t.Setenv("TELEMETRY_MAX_BACKLOG", "many") // read as 0 (no limit) before it was refused
	_, err := load(t, "--mode=sideways", "--batch-size=0", "--timestamps=later", "--shard=3/3",
		"--log-level=loud", "--collector-workers=0", "--db-max-conns=-1")
	var cerr *config.Error
	require.True(t, errors.As(err, &cerr), "%v", err)
	for _, want := range []string{"mode", "batch-size", "timestamps", "shard", "interval", "speed", "log-level", "collector-workers", "db-max-conns", "max-backlog"} {
		assert.Contains(t, err.Error(), want+":")
	}
	assert.Len(t, cerr.Problems, 10)
	t.Setenv("TELEMETRY_MAX_BACKLOG", "")
	t.Setenv("TELEMETRY_SPEED", "")
	_, err = load(t, "--speed=-1")
	assert.ErrorContains(t, err, "speed: must be 0 or more")

	t.Setenv("TELEMETRY_INTERVAL", "")
	_, err = load(t, "--mode=api")
	assert.ErrorContains(t, err, "mode api needs a database")
	_, err = load(t, "--no-such-flag")
	assert.ErrorContains(t, err, "unknown flag: --no-such-flag")
	_, err = load(t, "stray")
	assert.ErrorContains(t, err, `unexpected argument "stray"`)
}

func TestSplitModesNeedTheirServers(t *testing.T) {
	clearEnv(t)
	_, err := load(t, "--mode=collector")
	assert.ErrorContains(t, err, "database-url: mode collector needs a database")
	assert.ErrorContains(t, err, "redis-url: mode collector needs the Redis queue")
	_, err = load(t, "--mode=streamer")
	assert.ErrorContains(t, err, "redis-url: mode streamer needs the Redis queue")
	assert.NotContains(t, err.Error(), "database-url", "a streamer needs no database")

	t.Setenv("REDIS_URL", "redis://cache:6379/2")
	c, err := load(t, "--mode=streamer", "--shard=2/3")
	require.NoError(t, err)
	assert.Equal(t, "redis://cache:6379/2", c.RedisURL)
	_, err = load(t, "--redis-url=http://x")
	assert.ErrorContains(t, err, "redis-url: want redis://")
}

func TestShardIsIndexOfCount(t *testing.T) {
	clearEnv(t)
	for _, ok := range []string{"0/1", "2/3", " 9 / 10 "} {
		_, err := load(t, "--shard="+ok)
		assert.NoError(t, err, ok)
	}
	for _, bad := range []string{"1", "3/3", "-1/3", "0/0", "a/b", "1/2/3"} {
		_, err := load(t, "--shard="+bad)
		assert.ErrorContains(t, err, "is not i/N with 0 ≤ i < N", bad)
	}
}

func TestShardFromOrdinal(t *testing.T) {
	clearEnv(t)
	host, err := os.Hostname()
	require.NoError(t, err)
	_, err = load(t, "--shard=ordinal/100")
	if i := strings.LastIndexByte(host, '-'); i >= 0 && isNumber(host[i+1:]) {
		assert.NoError(t, err)
	} else {
		assert.ErrorContains(t, err, "does not end in -NUMBER")
	}
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

func TestHelp(t *testing.T) {
	clearEnv(t)
	var out bytes.Buffer
	_, err := config.Load([]string{"--help"}, &out)
	assert.ErrorIs(t, err, config.ErrHelp)
	for _, want := range []string{"Usage:", "--mode", "--database-url", "TELEMETRY_BATCH_SIZE", "--timestamps", "--shard"} {
		assert.Contains(t, out.String(), want)
	}
}

func TestRetention(t *testing.T) {
	clearEnv(t)
	for arg, want := range map[string]time.Duration{
		"auto": config.RetentionAuto, "15d": 15 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "36h": 36 * time.Hour,
		"1h30m": 90 * time.Minute, "0": 0, "90": 90 * time.Second,
	} {
		c, err := load(t, "--retention="+arg)
		require.NoError(t, err, arg)
		assert.Equal(t, want, c.Retention, arg)
	}
	for _, bad := range []string{"forever", "-1h", "15 days"} {
		_, err := load(t, "--retention="+bad)
		assert.ErrorContains(t, err, "retention:", bad)
	}
	_, err := load(t, "--retention-interval=0s")
	assert.ErrorContains(t, err, "retention-interval")
}
