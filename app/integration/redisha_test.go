package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// redisNode is a redis-server of the test's own on a loopback port, in a directory of its
// own: a primary, a replica, a sentinel or a cluster node. A failed test shows its log.
type redisNode struct {
	t    *testing.T
	args []string
	addr string
	cmd  *exec.Cmd
	out  apptest.SyncBuffer // over restarts
}

func newRedisNode(t *testing.T, args ...string) *redisNode {
	t.Helper()
	n := &redisNode{t: t, addr: freeAddr(t)}
	_, port, _ := net.SplitHostPort(n.addr)
	dir := t.TempDir()
	n.args = append([]string{"--bind", "127.0.0.1", "--port", port, "--dir", dir, "--save", ""}, args...)
	if len(args) > 0 && args[0] == "--sentinel" { // a sentinel rewrites its config file: it needs one
		conf := filepath.Join(dir, "sentinel.conf")
		require.NoError(t, os.WriteFile(conf, nil, 0o644))
		n.args = append([]string{conf}, n.args...)
	}
	n.start()
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("--- redis-server %v log (last 3000 bytes):\n%s", args, apptest.Tail(n.out.String(), 3000))
		}
	})
	return n
}

func (n *redisNode) start() {
	n.t.Helper()
	n.cmd = exec.Command(debianBinary(n.t, "redis-server", "redis-server"), n.args...)
	n.cmd.Stdout, n.cmd.Stderr = &n.out, &n.out
	require.NoError(n.t, n.cmd.Start())
	waitListening(n.t, n.addr)
}

// kill stops the server at once, as a machine failing would.
func (n *redisNode) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		_ = n.cmd.Wait()
	}
}

// client answers within 10 s: go-redis' default of 3 s times out a DEBUG SLEEP 3.
func (n *redisNode) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: n.addr, ReadTimeout: 10 * time.Second})
}

// sentinelSet starts a primary, a replica of it and three sentinels watching it as
// "mymaster" (a second without answers is down, two sentinels agree), and returns the
// redis-sentinel:// URL of the set.
func sentinelSet(t *testing.T) (url string, primary, replica *redisNode, sentinels []*redisNode) {
	t.Helper()
	// They persist, as in production: a primary restarted empty could hand its emptiness to
	// a replica that has not heard of the failover yet.
	persist := []string{"--appendonly", "yes", "--appendfsync", "everysec"}
	primary = newRedisNode(t, persist...)
	host, port, _ := net.SplitHostPort(primary.addr)
	replica = newRedisNode(t, append(persist, "--replicaof", host, port, "--enable-debug-command", "local")...)
	var addrs []string
	for range 3 {
		s := newRedisNode(t, "--sentinel")
		ctx := context.Background()
		c := s.client()
		for _, cmd := range [][]any{
			{"SENTINEL", "MONITOR", "mymaster", host, port, 2},
			{"SENTINEL", "SET", "mymaster", "down-after-milliseconds", 1000},
			{"SENTINEL", "SET", "mymaster", "failover-timeout", 5000},
		} {
			require.NoError(t, c.Do(ctx, cmd...).Err(), cmd)
		}
		c.Close()
		sentinels = append(sentinels, s)
		addrs = append(addrs, s.addr)
	}
	// Sentinels find the replica and each other through the primary within seconds; only
	// then can they agree on a failover.
	require.Eventually(t, func() bool {
		for _, s := range sentinels {
			c := s.client()
			others, err1 := c.Do(context.Background(), "SENTINEL", "SENTINELS", "mymaster").Slice()
			replicas, err2 := c.Do(context.Background(), "SENTINEL", "REPLICAS", "mymaster").Slice()
			c.Close()
			if err1 != nil || err2 != nil || len(others) != 2 || len(replicas) != 1 {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "sentinels know each other and the replica")
	return "redis-sentinel://" + strings.Join(addrs, ",") + "/mymaster/0", primary, replica, sentinels
}

// currentPrimary is the primary's address as a sentinel names it.
func currentPrimary(t *testing.T, sentinel *redisNode) string {
	c := sentinel.client()
	defer c.Close()
	addr, err := c.Do(context.Background(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster").StringSlice()
	require.NoError(t, err)
	return net.JoinHostPort(addr[0], addr[1])
}

// redisCluster starts three primaries, each persisting every write before it answers (AOF,
// fsync always), joined into a Redis Cluster, and returns its redis-cluster:// URL.
func redisCluster(t *testing.T) (url string, nodes []*redisNode) {
	t.Helper()
	var addrs []string
	for range 3 {
		n := newRedisNode(t, "--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
			"--appendonly", "yes", "--appendfsync", "always")
		nodes = append(nodes, n)
		addrs = append(addrs, n.addr)
	}
	out, err := exec.Command(debianBinary(t, "redis-cli", "redis-tools"),
		append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	require.NoError(t, err, string(out))
	waitClusterOK(t, nodes)
	return "redis-cluster://" + strings.Join(addrs, ","), nodes
}

func waitClusterOK(t *testing.T, nodes []*redisNode) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			c := n.client()
			info, err := c.ClusterInfo(context.Background()).Result()
			c.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "cluster state ok on every node")
}

// queueToolsWork checks what operators read off the queue, on any kind of Redis: the
// backlog the streamers' limit reads, the queue UI listing the queue, /ready.
func queueToolsWork(t *testing.T, p *pipeline) {
	t.Helper()
	q, err := asynqqueue.Open(p.redisURL, asynqqueue.Options{Name: p.queue})
	require.NoError(t, err)
	defer q.Close()
	// Batches stored while the fault cut their acknowledgement off come back once their
	// lease runs out (asynq: 30 s), and are found stored already.
	require.Eventually(t, func() bool {
		backlog, err := q.Backlog(context.Background())
		require.NoError(t, err)
		return backlog == 0
	}, 3*time.Minute, 500*time.Millisecond, "every batch taken")
	p.requireExact(t, time.Minute)
	api := start(t, "--mode=api", "--database-url="+p.dbURL, "--redis-url="+p.redisURL, "--queue-ui", "--queue-name="+p.queue)
	var queues struct{ Queues []struct{ Queue string } }
	require.Equal(t, http.StatusOK, api.get(t, "/queues/api/queues", &queues))
	var names []string
	for _, q := range queues.Queues {
		names = append(names, q.Queue)
	}
	assert.Contains(t, names, p.queue)
	assert.Equal(t, http.StatusOK, api.get(t, "/ready", nil), "ready: database and Redis answer")
}

// streamThrough streams the bundled file through two streamers (with extra flags) and two
// collectors, with fault done to Redis in mid-stream, and checks that the store holds every
// sample once and that the fault hit the streamers.
func streamThrough(t *testing.T, p *pipeline, fault func(), extra ...string) {
	t.Helper()
	p.collector(t, "collector-a")
	p.collector(t, "collector-b")
	streamers := startStreamers(t, p, 2, append([]string{"--batch-size=20", "--interval=50ms"}, extra...)...)
	require.Eventually(t, func() bool { n, _ := p.counts(); return n > 200 }, 30*time.Second, 20*time.Millisecond, "streaming")
	fault()
	for _, s := range streamers {
		require.NoError(t, s.Wait(t, 2*time.Minute), "streamers get past the fault and go on")
	}
	p.requireExact(t, 3*time.Minute)
	assert.True(t, logged(streamers[0], "failed, retrying") || logged(streamers[1], "failed, retrying"),
		"the fault hit the streamers mid-run")
	queueToolsWork(t, p)
}

func TestSplitModeOnRedisSentinel(t *testing.T) {
	slowTest(t, "a Redis Sentinel failover")
	t.Parallel()
	p := newPipeline(t)
	var primary, replica *redisNode
	var sentinels []*redisNode
	p.redisURL, primary, replica, sentinels = sentinelSet(t)
	first := currentPrimary(t, sentinels[0])
	require.Equal(t, primary.addr, first)

	streamThrough(t, p, func() {
		// The replica stalls for 3s, then the primary dies: what it took in that time never
		// reached the replica, which takes over. Publishing waited for it, so nothing is lost.
		stalled := make(chan error, 1)
		go func() {
			c := replica.client()
			defer c.Close()
			stalled <- c.Do(context.Background(), "DEBUG", "SLEEP", 3).Err()
		}()
		time.Sleep(time.Second)
		primary.kill()
		require.NoError(t, <-stalled)
		require.Eventually(t, func() bool { return currentPrimary(t, sentinels[0]) != first }, 30*time.Second, 100*time.Millisecond,
			"sentinels promote the replica")
		// Until the old primary is back, as the new one's replica, no batch has a second
		// copy and publishing waits.
		primary.start()
		// Sentinel converts it within seconds, or after 30 s more when its timers ran late on
		// a loaded machine (TILT mode). On a loaded machine the sentinels may also fail over
		// once more, back to the old primary: either way the set has a replica again.
		require.Eventually(t, func() bool {
			now := currentPrimary(t, sentinels[0])
			other := primary
			if now == primary.addr {
				other = replica
			}
			c := other.client()
			defer c.Close()
			info, err := c.Info(context.Background(), "replication").Result()
			_, port, _ := net.SplitHostPort(now)
			return err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_port:"+port+"\r\n") &&
				strings.Contains(info, "master_link_status:up")
		}, 2*time.Minute, 100*time.Millisecond, "one of the two replicates the primary again")
	}, "--redis-min-replicas=1")
}

func TestSplitModeOnRedisCluster(t *testing.T) {
	slowTest(t, "a Redis Cluster")
	t.Parallel()
	p := newPipeline(t)
	var nodes []*redisNode
	p.redisURL, nodes = redisCluster(t)

	// asynq keeps a queue's keys in one hash slot ({name}): restart the node that holds it.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{nodes[0].addr}})
	defer cc.Close()
	holder, err := cc.MasterForKey(context.Background(), fmt.Sprintf("asynq:{%s}", p.queue))
	require.NoError(t, err)
	var victim *redisNode
	for _, n := range nodes {
		if n.addr == holder.Options().Addr {
			victim = n
		}
	}
	require.NotNil(t, victim, "the queue's node is one of the three")

	streamThrough(t, p, func() {
		victim.kill()
		time.Sleep(2 * time.Second)
		victim.start()
		waitClusterOK(t, nodes)
	})
}
