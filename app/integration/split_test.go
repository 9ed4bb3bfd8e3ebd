package integration

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue/asynqtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// These tests run the real binary as separate processes — streamers and collectors over
// Redis into PostgreSQL — and break things underneath them.

// pipeline is one split deployment's shared settings: a database and a queue of its own.
type pipeline struct {
	dbURL, redisURL, queue string
	db                     *sql.DB
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	p := &pipeline{dbURL: sqlstoretest.PostgresURL(t), redisURL: asynqtest.RedisURL(t)}
	p.queue = asynqtest.QueueName(t, p.redisURL)
	db, err := sql.Open("pgx", p.dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	p.db = db
	return p
}

func (p *pipeline) collector(t *testing.T, name string, extra ...string) *apptest.Proc {
	return apptest.Spawn(t, name, append([]string{"--mode=collector", "--database-url=" + p.dbURL,
		"--redis-url=" + p.redisURL, "--queue-name=" + p.queue, "--shutdown-timeout=20s"}, extra...)...)
}

func (p *pipeline) streamer(t *testing.T, name string, shard string, extra ...string) *apptest.Proc {
	return apptest.Spawn(t, name, append([]string{"--mode=streamer", "--redis-url=" + p.redisURL, "--queue-name=" + p.queue,
		"--shard=" + shard, "--loop=false", "--timestamps=csv", "--interval=0", "--batch-size=50"}, extra...)...)
}

// counts reads what is stored: samples and GPUs. Errors (the database may be unreachable on
// purpose) count as -1.
func (p *pipeline) counts() (samples, gpus int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := p.db.QueryRowContext(ctx, `SELECT (SELECT coalesce(sum(samples), 0) FROM chunks),
		(SELECT count(*) FROM gpus)`).Scan(&samples, &gpus)
	if err != nil {
		return -1, -1
	}
	return samples, gpus
}

// distinct reads every stored sample back through the store and counts distinct ones (GPU,
// metric, time).
func (p *pipeline) distinct(t *testing.T) int {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, p.dbURL, sqlstore.Options{})
	require.NoError(t, err)
	defer store.Close()
	gpus, err := store.GPUs(ctx, telemetry.GPUFilter{})
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, g := range gpus {
		_, err := store.Samples(ctx, telemetry.SampleQuery{GPU: g.Key()}, func(smp telemetry.Sample) error {
			seen[smp.GPU+" "+smp.Metric+" "+smp.Time.String()] = true
			return nil
		})
		require.NoError(t, err)
	}
	return len(seen)
}

// requireExact waits until the bundled file is stored, then checks that it stays exact:
// 2,470 samples, none twice, 247 GPUs.
func (p *pipeline) requireExact(t *testing.T, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		samples, _ := p.counts()
		return samples >= 2470
	}, within, 100*time.Millisecond, "all 2,470 samples stored")
	time.Sleep(time.Second) // a duplicate would show up now
	samples, gpus := p.counts()
	assert.EqualValues(t, 2470, samples, "samples stored")
	assert.EqualValues(t, 2470, p.distinct(t), "distinct samples")
	assert.EqualValues(t, 247, gpus, "GPUs")
}

// requireAllBy requires every sample stored by deadline, then exactly once.
func (p *pipeline) requireAllBy(t *testing.T, deadline time.Time, msg string) {
	t.Helper()
	require.Eventually(t, func() bool {
		samples, _ := p.counts()
		return samples >= 2470
	}, time.Until(deadline), 100*time.Millisecond, "all 2,470 samples stored %s", msg)
	p.requireExact(t, time.Second)
}

func startStreamers(t *testing.T, p *pipeline, n int, extra ...string) []*apptest.Proc {
	var out []*apptest.Proc
	for i := range n {
		out = append(out, p.streamer(t, fmt.Sprintf("streamer-%d", i), fmt.Sprintf("%d/%d", i, n), extra...))
	}
	return out
}

func TestSplitModeScales(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ streamers, collectors int }{{3, 2}, {1, 3}, {10, 10}} {
		t.Run(fmt.Sprintf("%dx%d", tt.streamers, tt.collectors), func(t *testing.T) {
			if tt.streamers*tt.collectors > 10 {
				slowTest(t, "twenty processes")
			}
			p := newPipeline(t)
			var collectors []*apptest.Proc
			for i := range tt.collectors {
				collectors = append(collectors, p.collector(t, fmt.Sprintf("collector-%d", i)))
			}
			for _, s := range startStreamers(t, p, tt.streamers) {
				require.NoError(t, s.Wait(t, time.Minute), "a streamer with --loop=false exits 0 when done")
			}
			p.requireExact(t, time.Minute)
			for _, c := range collectors {
				c.Signal(syscall.SIGTERM)
			}
			for _, c := range collectors {
				assert.NoError(t, c.Wait(t, 30*time.Second), "SIGTERM stops a collector cleanly")
			}
		})
	}
}

func TestSplitModeSurvivesFaults(t *testing.T) {
	slowTest(t, "a split pipeline under faults")
	// A slow stream (two streamers, each a batch of 20 every 50ms: about 3s) so that the
	// faults land mid-run.
	slow := []string{"--batch-size=20", "--interval=50ms"}

	t.Run("collector killed", func(t *testing.T) {
		t.Parallel()
		p := newPipeline(t)
		writers := "--collector-workers=2" // so that 16 batches are in flight: see below
		victim := p.collector(t, "collector-a", writers)
		p.collector(t, "collector-b", writers).WaitReady(t)
		victim.WaitReady(t)
		streamers := startStreamers(t, p, 2, slow...)

		// Hold every write until both collectors are in the middle of their batches (2
		// writers each, taking 4 batches a writer from the queue), then kill one of them.
		lock, err := p.db.BeginTx(context.Background(), nil)
		require.NoError(t, err)
		_, err = lock.Exec("LOCK TABLE batches IN EXCLUSIVE MODE")
		require.NoError(t, err)
		opt, err := asynq.ParseRedisURI(p.redisURL)
		require.NoError(t, err)
		ins := asynq.NewInspector(opt)
		defer ins.Close()
		require.Eventually(t, func() bool {
			info, err := ins.GetQueueInfo(p.queue)
			return err == nil && info.Active == 16
		}, 30*time.Second, 20*time.Millisecond, "16 batches in flight")
		victim.Signal(syscall.SIGKILL)
		<-victim.Done
		killed := time.Now()
		require.NoError(t, lock.Rollback())

		for _, s := range streamers {
			require.NoError(t, s.Wait(t, time.Minute))
		}
		// The batches the killed collector held come back once their lease has gone 15 s
		// without an extension, taken by the collector left.
		p.requireAllBy(t, killed.Add(30*time.Second), "within 30 s of the kill")
	})

	t.Run("redis restarted", func(t *testing.T) {
		t.Parallel()
		p := newPipeline(t)
		var restart func()
		p.redisURL, restart = ownRedis(t)

		p.collector(t, "collector-a")
		p.collector(t, "collector-b")
		streamers := startStreamers(t, p, 2, slow...)
		time.Sleep(time.Second)
		restart()
		restarted := time.Now()
		for _, s := range streamers {
			require.NoError(t, s.Wait(t, time.Minute), "streamers wait for Redis and go on")
		}
		p.requireAllBy(t, restarted.Add(30*time.Second), "within 30 s of the restart")
		assert.True(t, logged(streamers[0], "failed, retrying") || logged(streamers[1], "failed, retrying"),
			"the outage hit the streamers mid-run")
	})

	t.Run("database unreachable for 10s", func(t *testing.T) {
		t.Parallel()
		p := newPipeline(t)
		px := newProxy(t, "127.0.0.1:5432")
		viaProxy := strings.Replace(p.dbURL, "127.0.0.1:5432", px.addr(), 1)
		require.NotEqual(t, viaProxy, p.dbURL, "the test database is on 127.0.0.1:5432")
		var collectors []*apptest.Proc
		for _, name := range []string{"collector-a", "collector-b"} {
			collectors = append(collectors, apptest.Spawn(t, name, "--mode=collector", "--database-url="+viaProxy,
				"--redis-url="+p.redisURL, "--queue-name="+p.queue))
		}
		for _, c := range collectors {
			c.WaitReady(t) // migrated: the outage is to hit batches, not start-up
		}
		streamers := startStreamers(t, p, 2, slow...)
		require.Eventually(t, func() bool { n, _ := p.counts(); return n > 0 }, 30*time.Second, 20*time.Millisecond)
		px.cut()
		time.Sleep(10 * time.Second)
		px.restore()
		for _, s := range streamers {
			require.NoError(t, s.Wait(t, time.Minute))
		}
		p.requireExact(t, time.Minute)
		assert.True(t, logged(collectors[0], "batch failed, will retry") || logged(collectors[1], "batch failed, will retry"),
			"the outage hit the collectors mid-run")
	})

	t.Run("corrupt task archived", func(t *testing.T) {
		t.Parallel()
		p := newPipeline(t)
		opt, err := asynq.ParseRedisURI(p.redisURL)
		require.NoError(t, err)
		client := asynq.NewClient(opt)
		defer client.Close()
		_, err = client.Enqueue(asynq.NewTask("telemetry:batch:v1", []byte("\x01garbage")),
			asynq.Queue(p.queue), asynq.MaxRetry(math.MaxInt32))
		require.NoError(t, err)

		p.collector(t, "collector")
		for _, s := range startStreamers(t, p, 1) {
			require.NoError(t, s.Wait(t, time.Minute))
		}
		p.requireExact(t, time.Minute)
		ins := asynq.NewInspector(opt)
		defer ins.Close()
		archived, err := ins.ListArchivedTasks(p.queue)
		require.NoError(t, err)
		require.Len(t, archived, 1)
		assert.Contains(t, archived[0].LastErr, "corrupt payload")
	})
}

// ownRedis starts a Redis of the test's own, persisting every write (AOF, fsync always), and
// returns its URL and a function that stops it gracefully and starts it again 2s later.
func ownRedis(t *testing.T) (string, func()) {
	t.Helper()
	n := newRedisNode(t, "--appendonly", "yes", "--appendfsync", "always")
	return "redis://" + n.addr + "/0", func() {
		require.NoError(t, n.cmd.Process.Signal(syscall.SIGTERM)) // Redis persists and exits
		_ = n.cmd.Wait()
		time.Sleep(2 * time.Second)
		n.start()
	}
}

// logged reports whether the process logged a message ending in msg.
func logged(p *apptest.Proc, msg string) bool {
	out, _ := os.ReadFile(p.Log)
	return strings.Contains(string(out), msg+`","`)
}

// proxy forwards TCP connections to a server, and can cut them all and refuse new ones.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	px := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go px.serve()
	t.Cleanup(func() { ln.Close(); px.cut() })
	return px
}

func (px *proxy) addr() string { return px.ln.Addr().String() }

func (px *proxy) serve() {
	for {
		client, err := px.ln.Accept()
		if err != nil {
			return
		}
		px.mu.Lock()
		down := px.down
		px.mu.Unlock()
		if down {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", px.target)
		if err != nil {
			client.Close()
			continue
		}
		px.track(client, server)
		go func() { io.Copy(server, client); server.Close() }()
		go func() { io.Copy(client, server); client.Close() }()
	}
}

func (px *proxy) track(conns ...net.Conn) {
	px.mu.Lock()
	defer px.mu.Unlock()
	for _, c := range conns {
		px.conns[c] = true
	}
}

func (px *proxy) cut() {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.down = true
	for c := range px.conns {
		c.Close()
	}
	clear(px.conns)
}

func (px *proxy) restore() {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.down = false
}
