// Package portstest holds the contract test suites of the ports. Every adapter's tests run
// the suite of the port it implements, so a fake and the real thing are held to one
// behaviour.
package portstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// Queue is one queue under test: both ends of the same topic.
type Queue struct {
	Publisher ports.Publisher
	Consumer  ports.Consumer
}

// QueueOptions tell the suite what to expect of the adapter.
type QueueOptions struct {
	// NewQueue returns an empty queue, private to the calling test, whose consumer retries
	// failed batches after at most RetryWithin.
	NewQueue func(t *testing.T) Queue

	// RetryWithin bounds the delay before a failed batch is delivered again.
	RetryWithin time.Duration
}

// TestQueue runs the ports.Publisher and ports.Consumer contract.
func TestQueue(t *testing.T, opts QueueOptions) {
	t.Run("DeliversEveryBatchIntact", func(t *testing.T) { deliversEveryBatch(t, opts) })
	t.Run("RedeliversFailedBatch", func(t *testing.T) { redeliversFailed(t, opts) })
	t.Run("NeverRetriesInvalidBatch", func(t *testing.T) { neverRetriesInvalid(t, opts) })
	t.Run("RedeliversBatchInterruptedByShutdown", func(t *testing.T) { redeliversInterrupted(t, opts) })
	t.Run("ConcurrentPublishers", func(t *testing.T) { concurrentPublishers(t, opts) })
}

// SampleBatch returns a batch with n samples of one GPU, at whole seconds from 2025-01-01.
func SampleBatch(id string, n int) telemetry.Batch {
	gpu := telemetry.GPU{UUID: "GPU-" + id, Hostname: "host-" + id, Index: 0, Device: "nvidia0",
		ModelName: "NVIDIA H100 80GB HBM3", DriverVersion: "535.129.03"}
	b := telemetry.Batch{ID: id, GPUs: []telemetry.GPU{gpu}}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		b.Samples = append(b.Samples, telemetry.Sample{
			GPU: gpu.UUID, Metric: "DCGM_FI_DEV_GPU_UTIL", Time: base.Add(time.Duration(i) * time.Second),
			Value: float64(i) + 0.5, Pod: "pod-a",
		})
	}
	return b
}

// recorder counts deliveries per batch ID.
type recorder struct {
	mu   sync.Mutex
	seen map[string]int
	got  map[string]telemetry.Batch
}

func newRecorder() *recorder {
	return &recorder{seen: map[string]int{}, got: map[string]telemetry.Batch{}}
}

func (r *recorder) record(b telemetry.Batch) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[b.ID]++
	r.got[b.ID] = b
	return r.seen[b.ID]
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[id]
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// consume runs the consumer in the background until the test ends.
func consume(t *testing.T, c ports.Consumer, handle func(context.Context, telemetry.Batch) error) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Consume(ctx, handle)
	}()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Consume did not return within 30s of its context ending")
		}
	}
	t.Cleanup(stop)
	return stop
}

func publish(t *testing.T, p ports.Publisher, b telemetry.Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.Publish(ctx, b))
}

func deliversEveryBatch(t *testing.T, opts QueueOptions) {
	q := opts.NewQueue(t)
	rec := newRecorder()
	consume(t, q.Consumer, func(_ context.Context, b telemetry.Batch) error { rec.record(b); return nil })

	const n = 20
	want := map[string]telemetry.Batch{}
	for i := range n {
		b := SampleBatch(fmt.Sprintf("b%02d", i), i%5+1)
		want[b.ID] = b
		publish(t, q.Publisher, b)
	}
	require.Eventually(t, func() bool { return rec.distinct() == n }, 30*time.Second, 10*time.Millisecond)

	// Acknowledged batches are not delivered again.
	time.Sleep(opts.RetryWithin + 200*time.Millisecond)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for id, b := range want {
		assert.Equal(t, 1, rec.seen[id], "deliveries of %s", id)
		assertSameBatch(t, b, rec.got[id])
	}
}

// assertSameBatch compares batches, times by instant (adapters may change the location).
func assertSameBatch(t *testing.T, want, got telemetry.Batch) {
	t.Helper()
	require.Len(t, got.Samples, len(want.Samples))
	for i := range want.Samples {
		assert.True(t, want.Samples[i].Time.Equal(got.Samples[i].Time), "sample %d time", i)
		got.Samples[i].Time = want.Samples[i].Time
	}
	assert.Equal(t, want, got)
}

func redeliversFailed(t *testing.T, opts QueueOptions) {
	q := opts.NewQueue(t)
	rec := newRecorder()
	consume(t, q.Consumer, func(_ context.Context, b telemetry.Batch) error {
		if rec.record(b) < 3 {
			return errors.New("database unreachable")
		}
		return nil
	})
	publish(t, q.Publisher, SampleBatch("flaky", 3))
	require.Eventually(t, func() bool { return rec.count("flaky") >= 3 }, 3*opts.RetryWithin+10*time.Second, 10*time.Millisecond)
	time.Sleep(opts.RetryWithin + 200*time.Millisecond)
	assert.Equal(t, 3, rec.count("flaky"), "delivered until it succeeded, then never again")
}

func neverRetriesInvalid(t *testing.T, opts QueueOptions) {
	q := opts.NewQueue(t)
	rec := newRecorder()
	consume(t, q.Consumer, func(_ context.Context, b telemetry.Batch) error {
		rec.record(b)
		if b.ID == "poison" {
			return fmt.Errorf("store batch: %w", telemetry.Invalid("batch", "cannot be stored"))
		}
		return nil
	})
	publish(t, q.Publisher, SampleBatch("poison", 1))
	publish(t, q.Publisher, SampleBatch("good", 1))
	require.Eventually(t, func() bool { return rec.count("good") == 1 }, 30*time.Second, 10*time.Millisecond)
	time.Sleep(opts.RetryWithin + 200*time.Millisecond)
	assert.Equal(t, 1, rec.count("poison"), "an invalid batch is set aside after one delivery")
}

func redeliversInterrupted(t *testing.T, opts QueueOptions) {
	q := opts.NewQueue(t)
	started := make(chan struct{})
	stop := consume(t, q.Consumer, func(ctx context.Context, _ telemetry.Batch) error {
		close(started)
		<-ctx.Done() // a slow write, interrupted by shutdown
		return ctx.Err()
	})
	publish(t, q.Publisher, SampleBatch("interrupted", 2))
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("batch never delivered")
	}
	stop()

	rec := newRecorder()
	consume(t, q.Consumer, func(_ context.Context, b telemetry.Batch) error { rec.record(b); return nil })
	require.Eventually(t, func() bool { return rec.count("interrupted") == 1 }, opts.RetryWithin+30*time.Second, 10*time.Millisecond)
}

func concurrentPublishers(t *testing.T, opts QueueOptions) {
	q := opts.NewQueue(t)
	rec := newRecorder()
	consume(t, q.Consumer, func(_ context.Context, b telemetry.Batch) error { rec.record(b); return nil })

	const publishers, each = 4, 50
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				publish(t, q.Publisher, SampleBatch(fmt.Sprintf("p%d-%03d", p, i), 1))
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return rec.distinct() == publishers*each }, 60*time.Second, 10*time.Millisecond)
}
