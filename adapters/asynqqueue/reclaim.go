package asynqqueue

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// A collector killed while it holds batches holds them until its leases expire: asynq leases
// a batch for 30 s, extends the lease every 5 s while its handler runs, and gives back one
// whose lease expired 30 s ago from a recoverer that runs once a minute — up to two minutes
// in all, during which a dashboard misses those samples. reclaim gives a batch back once its
// lease has gone reclaimAfter without an extension (three heartbeats missed): a live
// collector's lease is never that old, and should a slow one still finish the batch after,
// storing it twice stores each sample once. Collectors' clocks must agree within
// reclaimAfter minus the 10 s a lease has left when it is that old.
const (
	leaseDuration = 30 * time.Second // asynq's, fixed (internal/rdb.LeaseDuration)
	reclaimAfter  = 15 * time.Second
	reclaimEvery  = 2 * time.Second
)

// reclaimScript moves the batches of the queue whose lease expires before ARGV[1] (Unix
// seconds) from active back to the front of pending, as asynq's own recoverer and dequeue
// scripts lay them out (asynq v0.26: KEYS are the queue's active list, lease set and pending
// list, ARGV[2] the prefix of its task hashes). Every key is in the queue's hash slot, so it
// runs on a Redis Cluster as well; run by several collectors at once, each batch moves once.
var reclaimScript = redis.NewScript(`
local ids = redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", "(" .. ARGV[1])
local moved = 0
for _, id in ipairs(ids) do
	redis.call("ZREM", KEYS[2], id)
	if redis.call("LREM", KEYS[1], 0, id) > 0 then
		redis.call("HSET", ARGV[2] .. id, "state", "pending", "pending_since", ARGV[3])
		redis.call("RPUSH", KEYS[3], id)
		moved = moved + 1
	end
end
return moved`)

// reclaim gives back, every reclaimEvery until ctx ends, the batches whose lease has gone
// reclaimAfter without an extension.
func (q *Queue) reclaim(ctx context.Context) {
	tick := time.NewTicker(reclaimEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := q.reclaimOnce(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			q.opts.Logger.DebugContext(ctx, "cannot look for batches of a stopped collector", "queue", q.opts.Name, "err", err)
		case n > 0:
			q.opts.Logger.WarnContext(ctx, "batches of a collector that stopped extending their lease given back to the queue",
				"queue", q.opts.Name, "batches", n, "lease_silent_for", reclaimAfter)
		}
	}
}

// reclaimOnce moves back the batches whose lease, as of now, has gone reclaimAfter without
// an extension, and returns how many.
func (q *Queue) reclaimOnce(ctx context.Context, now time.Time) (int, error) {
	name := q.opts.Name
	keys := []string{
		fmt.Sprintf("asynq:{%s}:active", name),
		fmt.Sprintf("asynq:{%s}:lease", name),
		fmt.Sprintf("asynq:{%s}:pending", name),
	}
	cutoff := now.Add(leaseDuration - reclaimAfter).Unix()
	return reclaimScript.Run(ctx, q.rdb, keys, cutoff, fmt.Sprintf("asynq:{%s}:t:", name), now.UnixNano()).Int()
}
