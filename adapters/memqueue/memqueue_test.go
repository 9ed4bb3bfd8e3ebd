package memqueue_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/memqueue"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports/portstest"
)

func fastOptions() memqueue.Options {
	return memqueue.Options{Capacity: 8, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Workers: 3}
}

func TestContract(t *testing.T) {
	portstest.TestQueue(t, portstest.QueueOptions{
		RetryWithin: 50 * time.Millisecond,
		NewQueue: func(t *testing.T) portstest.Queue {
			topic := memqueue.New(fastOptions()).Topic(t.Name())
			return portstest.Queue{Publisher: topic, Consumer: topic}
		},
	})
}

func TestPublishBlocksWhenFull(t *testing.T) {
	topic := memqueue.New(memqueue.Options{Capacity: 2}).Topic("t")
	ctx := context.Background()
	since := time.Now()
	require.NoError(t, topic.Publish(ctx, portstest.SampleBatch("a", 1)))
	require.NoError(t, topic.Publish(ctx, portstest.SampleBatch("b", 1)))

	// A delivered but unacknowledged batch still takes room.
	d, err := topic.Receive(ctx)
	require.NoError(t, err)

	full, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, topic.Publish(full, portstest.SampleBatch("c", 1)), context.DeadlineExceeded)
	st := topic.Stats()
	assert.WithinRange(t, st.OldestQueued, since, time.Now(), "b waits since it was published")
	st.OldestQueued = time.Time{}
	assert.Equal(t, memqueue.Stats{Queued: 1, InFlight: 1, Samples: 2}, st)

	published := make(chan error, 1)
	go func() { published <- topic.Publish(ctx, portstest.SampleBatch("c", 1)) }()
	select {
	case <-published:
		t.Fatal("Publish returned while the topic was full")
	case <-time.After(30 * time.Millisecond):
	}
	d.Ack()
	select {
	case err := <-published:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Publish still blocked after an ack made room")
	}
}

func TestLeaseExpiryRedelivers(t *testing.T) {
	topic := memqueue.New(memqueue.Options{AckTimeout: 30 * time.Millisecond}).Topic("t")
	ctx := context.Background()
	require.NoError(t, topic.Publish(ctx, portstest.SampleBatch("a", 1)))

	first, err := topic.Receive(ctx)
	require.NoError(t, err)
	second, err := topic.Receive(ctx) // waits out the lease
	require.NoError(t, err)
	assert.Equal(t, "a", second.Batch.ID)
	assert.Equal(t, 2, second.Attempt)

	first.Ack() // stale: must not settle the second delivery
	assert.Equal(t, memqueue.Stats{InFlight: 1, Samples: 1}, topic.Stats())
	second.Ack()
	assert.Equal(t, memqueue.Stats{}, topic.Stats())
}

func TestNackDelaysRedelivery(t *testing.T) {
	topic := memqueue.New(memqueue.Options{}).Topic("t")
	ctx := context.Background()
	require.NoError(t, topic.Publish(ctx, portstest.SampleBatch("a", 1)))
	d, err := topic.Receive(ctx)
	require.NoError(t, err)
	start := time.Now()
	d.Nack(40 * time.Millisecond)
	st := topic.Stats()
	assert.False(t, st.OldestQueued.IsZero(), "a batch waiting out its backoff waits")
	st.OldestQueued = time.Time{}
	assert.Equal(t, memqueue.Stats{Queued: 1, Samples: 1}, st)
	again, err := topic.Receive(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond)
	assert.Equal(t, 2, again.Attempt)
}

func TestCloseDrains(t *testing.T) {
	topic := memqueue.New(fastOptions()).Topic("t")
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, topic.Publish(ctx, portstest.SampleBatch(id, 1)))
	}
	topic.Close()
	topic.Close()
	assert.ErrorIs(t, topic.Publish(ctx, portstest.SampleBatch("late", 1)), memqueue.ErrClosed)

	var handled atomic.Int32
	failedOnce := atomic.Bool{}
	err := topic.Consume(ctx, func(_ context.Context, b telemetry.Batch) error {
		if b.ID == "b" && failedOnce.CompareAndSwap(false, true) {
			return errors.New("transient")
		}
		handled.Add(1)
		return nil
	})
	require.NoError(t, err, "Consume returns nil once a closed topic is drained")
	assert.EqualValues(t, 3, handled.Load(), "a batch failing during the drain is still retried")
	_, err = topic.Receive(ctx)
	assert.ErrorIs(t, err, memqueue.ErrClosed)
}

func TestDeadLettersAndPanics(t *testing.T) {
	topic := memqueue.New(memqueue.Options{MaxDeadLetters: 2, MinBackoff: time.Millisecond}).Topic("t")
	ctx := context.Background()
	for _, id := range []string{"x1", "x2", "x3", "panic"} {
		require.NoError(t, topic.Publish(ctx, portstest.SampleBatch(id, 1)))
	}
	topic.Close()
	panicked := atomic.Bool{}
	require.NoError(t, topic.Consume(ctx, func(_ context.Context, b telemetry.Batch) error {
		if b.ID == "panic" {
			if panicked.CompareAndSwap(false, true) {
				panic("boom")
			}
			return nil
		}
		return telemetry.Invalid("batch", "bad")
	}))
	assert.True(t, panicked.Load())
	assert.Equal(t, memqueue.Stats{DeadLetters: 3}, topic.Stats())
	dead := topic.DeadLetters()
	require.Len(t, dead, 2, "only the most recent are kept")
	assert.Equal(t, []string{"x2", "x3"}, []string{dead[0].ID, dead[1].ID})
}

func TestBrokerTopicsAreSeparate(t *testing.T) {
	b := memqueue.New(memqueue.Options{})
	assert.Same(t, b.Topic("a"), b.Topic("a"))
	require.NoError(t, b.Topic("a").Publish(context.Background(), portstest.SampleBatch("1", 1)))
	assert.Equal(t, 1, b.Topic("a").Stats().Queued)
	assert.Equal(t, 0, b.Topic("b").Stats().Queued)
	b.Close()
	assert.ErrorIs(t, b.Topic("b").Publish(context.Background(), portstest.SampleBatch("2", 1)), memqueue.ErrClosed)
}

// On shutdown the topic is drained — what it holds exists nowhere else — within the grace
// given; past it, the error counts what was not stored.
func TestConsumeAndDrain(t *testing.T) {
	for _, tc := range []struct {
		name      string
		slow      time.Duration // each batch's handling
		grace     time.Duration
		wantError string
	}{
		{"within the grace", 10 * time.Millisecond, time.Second, ""},
		{"past the grace", time.Hour, 100 * time.Millisecond, "queue not drained within 100ms: 4 accepted samples (4 batches) not stored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := fastOptions()
			opts.Workers = 1
			topic := memqueue.New(opts).Topic("batches")
			var stored atomic.Int64
			started := make(chan struct{}, 8)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- topic.ConsumeAndDrain(ctx, func(ctx context.Context, b telemetry.Batch) error {
					started <- struct{}{}
					select {
					case <-time.After(tc.slow):
						stored.Add(int64(len(b.Samples)))
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				}, tc.grace)
			}()
			for _, id := range []string{"a", "b", "c", "d"} {
				require.NoError(t, topic.Publish(context.Background(), portstest.SampleBatch(id, 1)))
			}
			<-started
			cancel() // shutdown, with batches still queued
			err := <-done
			if tc.wantError == "" {
				require.NoError(t, err)
				assert.EqualValues(t, 4, stored.Load(), "every queued batch stored")
				return
			}
			assert.EqualError(t, err, tc.wantError)
			assert.Zero(t, stored.Load())
		})
	}
}
