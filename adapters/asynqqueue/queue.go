// Package asynqqueue is the queue between processes: batches travel through Redis as asynq
// tasks, one task per batch, encoded compactly (codec.go). Publishing waits while the queue's
// backlog is over a limit and retries while Redis is unreachable; consuming retries failed
// batches with backoff and archives those that can never succeed, where asynqmon shows them.
package asynqqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/access"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

var (
	_ ports.Publisher = (*Queue)(nil)
	_ ports.Consumer  = (*Queue)(nil)
)

// Options configure a Queue. Zero fields take the defaults given.
type Options struct {
	// Name is the asynq queue. Default "telemetry".
	Name string

	// MaxBacklog is how many batches may wait in the queue (pending, scheduled for retry
	// or being processed) before Publish waits for collectors to catch up. 0 means no limit.
	MaxBacklog int

	// Concurrency is how many batches Consume handles at once. Default 2.
	Concurrency int

	// MinBackoff and MaxBackoff bound the delay before a failed batch is delivered again;
	// it doubles with each attempt. Defaults 250ms and 10s. They also pace Publish's
	// retries while Redis is unreachable.
	MinBackoff, MaxBackoff time.Duration

	// PollInterval is how often an idle consumer looks for batches and moves batches due
	// for retry back to the queue. Default 200ms.
	PollInterval time.Duration

	// ShutdownTimeout is how long Consume waits for running handlers when its context
	// ends; batches still running then go back to the queue. Default 20s.
	ShutdownTimeout time.Duration

	// MinReplicas is how many replicas must have a batch before Publish returns (Redis'
	// WAIT): with 1 behind Sentinel, a batch published is not lost when the primary dies
	// and a replica takes over. Publish retries until they have it. 0 does not wait. Not
	// for Redis Cluster, whose WAIT cannot follow a key to its node.
	MinReplicas int

	// ReplicaTimeout is how long one wait for replicas lasts before Publish retries.
	// Default 2s.
	ReplicaTimeout time.Duration

	// Logger receives retries, archived batches and asynq's own messages. Nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = "telemetry"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&o.MinBackoff, 250 * time.Millisecond}, {&o.MaxBackoff, 10 * time.Second},
		{&o.PollInterval, 200 * time.Millisecond}, {&o.ShutdownTimeout, 20 * time.Second},
		{&o.ReplicaTimeout, 2 * time.Second}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Queue is one asynq queue on one Redis, a Sentinel set's primary or a Redis Cluster.
type Queue struct {
	opts      Options
	connOpt   asynq.RedisConnOpt
	rdb       redis.UniversalClient
	publisher redis.UniversalClient // a pool of one connection when Publish waits for replicas: see awaitReplicas
	client    *asynq.Client
	inspector *asynq.Inspector

	mu        sync.Mutex // guards the backlog estimate
	checkedAt time.Time
	backlog   int
}

// Open connects to the Redis redisURL names (see ParseURL). It does not wait for Redis to
// answer: Publish and Consume retry until it does.
func Open(redisURL string, opts Options) (*Queue, error) {
	connOpt, err := ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL %s: %w", Redact(redisURL), err)
	}
	if _, cluster := connOpt.(asynq.RedisClusterClientOpt); cluster && opts.MinReplicas > 0 {
		return nil, fmt.Errorf("redis URL %s: waiting for replicas works with one Redis or Sentinel, not a cluster", Redact(redisURL))
	}
	rdb := connOpt.MakeRedisClient().(redis.UniversalClient) // every asynq.RedisConnOpt makes one
	// A Redis that answers but refuses us will not change its mind: say so now. One that
	// does not answer is waited for by whoever uses the queue.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); misconfigured(err) {
		rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", Redact(redisURL), err)
	}
	q := &Queue{opts: opts.withDefaults(), connOpt: connOpt, rdb: rdb, publisher: rdb, inspector: asynq.NewInspectorFromRedisClient(rdb)}
	if q.opts.MinReplicas > 0 {
		// WAIT counts the replicas that have this connection's writes: the enqueue and the
		// WAIT after it must share one.
		q.publisher = onePoolConnection(connOpt)
	}
	q.client = asynq.NewClientFromRedisClient(q.publisher)
	return q, nil
}

// onePoolConnection is a client of the same Redis with a pool of one connection.
func onePoolConnection(connOpt asynq.RedisConnOpt) redis.UniversalClient {
	switch o := connOpt.(type) {
	case asynq.RedisFailoverClientOpt:
		o.PoolSize = 1
		return o.MakeRedisClient().(redis.UniversalClient)
	case asynq.RedisClientOpt:
		o.PoolSize = 1
		return o.MakeRedisClient().(redis.UniversalClient)
	}
	return connOpt.MakeRedisClient().(redis.UniversalClient)
}

// misconfigured reports whether Redis refused the connection for a reason that waiting will
// not cure: a wrong or missing password, a user without the rights, a database index that
// does not exist.
func misconfigured(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	for _, refusal := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "ERR invalid password", "ERR AUTH", "ERR DB index is out of range"} {
		if strings.HasPrefix(msg, refusal) {
			return true
		}
	}
	return false
}

// Name is the asynq queue's name.
func (q *Queue) Name() string { return q.opts.Name }

// Ping checks that Redis answers.
func (q *Queue) Ping(ctx context.Context) error {
	if err := q.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis unreachable: %w", err)
	}
	return nil
}

// Close closes the connections to Redis.
func (q *Queue) Close() error {
	if q.publisher != q.rdb {
		q.publisher.Close()
	}
	return q.rdb.Close()
}

// Inspector gives access to the queue's tasks, for operators and tests.
func (q *Queue) Inspector() *asynq.Inspector { return q.inspector }

// Publish implements ports.Publisher: it waits while the backlog is over MaxBacklog, then
// enqueues the batch as one task whose ID is the batch ID, retrying with backoff while Redis
// is unreachable. A batch whose task is still queued is not queued twice.
func (q *Queue) Publish(ctx context.Context, b telemetry.Batch) error {
	if err := q.waitForRoom(ctx); err != nil {
		return err
	}
	task := asynq.NewTask(TaskType, encode(b),
		asynq.Queue(q.opts.Name),
		asynq.TaskID(b.ID),
		asynq.MaxRetry(math.MaxInt32), // transient failures are retried for as long as they last
		asynq.Timeout(5*time.Minute),
	)
	return q.retry(ctx, "publish batch", func() error {
		_, err := q.client.EnqueueContext(ctx, task)
		switch {
		case errors.Is(err, asynq.ErrTaskIDConflict):
			// Queued already, by an earlier attempt whose answer was lost (or whose
			// replicas were waited for in vain: they are waited for again).
		case err != nil:
			return err
		default:
			q.mu.Lock()
			q.backlog++
			q.mu.Unlock()
		}
		return q.awaitReplicas(ctx)
	})
}

// awaitReplicas waits until MinReplicas replicas have every write of the publishing
// connection. After a failover the new primary has no replica until the old one returns as
// one: the batch is published again until one has it. (A connection lost between the
// enqueue and the WAIT leaves that batch as safe as without one: WAIT on a new connection
// has nothing of its own to wait for.)
func (q *Queue) awaitReplicas(ctx context.Context) error {
	if q.opts.MinReplicas <= 0 {
		return nil
	}
	n, err := q.publisher.Do(ctx, "WAIT", q.opts.MinReplicas, q.opts.ReplicaTimeout.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("wait for replicas: %w", err)
	}
	if n < q.opts.MinReplicas {
		return fmt.Errorf("%d of %d replicas have the batch after %s", n, q.opts.MinReplicas, q.opts.ReplicaTimeout)
	}
	return nil
}

// waitForRoom blocks while the queue holds MaxBacklog batches or more. It asks Redis at most
// every 100ms, counting its own publishes in between.
func (q *Queue) waitForRoom(ctx context.Context) error {
	if q.opts.MaxBacklog <= 0 {
		return nil
	}
	for waited := false; ; waited = true {
		q.mu.Lock()
		fresh := time.Since(q.checkedAt) < 100*time.Millisecond
		backlog := q.backlog
		q.mu.Unlock()
		if fresh && backlog < q.opts.MaxBacklog {
			return nil
		}
		if !fresh {
			n, err := q.Backlog(ctx)
			if err != nil {
				if err := q.retry(ctx, "read queue backlog", func() error { n, err = q.Backlog(ctx); return err }); err != nil {
					return err
				}
			}
			q.mu.Lock()
			q.backlog, q.checkedAt = n, time.Now()
			q.mu.Unlock()
			if n < q.opts.MaxBacklog {
				return nil
			}
		}
		if !waited {
			q.opts.Logger.DebugContext(ctx, "queue backlog over limit, waiting", "queue", q.opts.Name,
				"backlog", backlog, "max_backlog", q.opts.MaxBacklog)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// Backlog counts the batches waiting in the queue or being processed.
func (q *Queue) Backlog(ctx context.Context) (int, error) {
	// GetQueueInfo's "no such queue" error does not match asynq.ErrQueueNotFound, so
	// look the queue up first: it exists once anything was published to it.
	queues, err := q.inspector.Queues()
	if err != nil {
		return 0, err
	}
	if !slices.Contains(queues, q.opts.Name) {
		return 0, nil
	}
	info, err := q.inspector.GetQueueInfo(q.opts.Name)
	if err != nil {
		return 0, err
	}
	return info.Pending + info.Active + info.Scheduled + info.Retry, nil
}

// OldestWait is how long the oldest pending batch has waited in Redis; 0 when none waits.
func (q *Queue) OldestWait(ctx context.Context) (time.Duration, error) {
	queues, err := q.inspector.Queues()
	if err != nil || !slices.Contains(queues, q.opts.Name) {
		return 0, err
	}
	info, err := q.inspector.GetQueueInfo(q.opts.Name)
	if err != nil {
		return 0, err
	}
	return info.Latency, nil
}

// retry runs f until it succeeds or ctx ends, backing off and logging while it fails.
func (q *Queue) retry(ctx context.Context, what string, f func() error) error {
	delay := q.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			if attempt > 1 {
				q.opts.Logger.InfoContext(ctx, "redis reachable again", "queue", q.opts.Name, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		q.opts.Logger.WarnContext(ctx, what+" failed, retrying", "queue", q.opts.Name,
			"attempt", attempt, "retry_in", delay, "err", err)
		if err := sleep(ctx, delay); err != nil {
			return err
		}
		delay = min(delay*2, q.opts.MaxBackoff)
	}
}

// Redact hides the password in a Redis URL, for logs and errors.
func Redact(redisURL string) string {
	scheme, rest, ok := strings.Cut(redisURL, "://")
	if !ok {
		return redisURL
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return redisURL
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return redisURL
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Monitor returns asynqmon's web UI for this Redis, to be served under root (e.g. "/queues"):
// backlog, retries and archived batches, to inspect, and for admins to act on.
func (q *Queue) Monitor(root string) http.Handler {
	// The UI's actions archive, delete or pause batches: only an admin gets them (the HTTP
	// server puts the caller's role in the request's context); everyone else gets the UI
	// read-only. Cross-origin writes are refused whoever sends them.
	readOnly := asynqmon.New(asynqmon.Options{RootPath: root, RedisConnOpt: q.connOpt, ReadOnly: true})
	full := asynqmon.New(asynqmon.Options{RootPath: root, RedisConnOpt: q.connOpt})
	return http.NewCrossOriginProtection().Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if access.RoleFrom(r.Context()) >= access.Admin {
			full.ServeHTTP(w, r)
			return
		}
		readOnly.ServeHTTP(w, r)
	}))
}
