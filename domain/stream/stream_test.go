package stream_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/memqueue"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/stream"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// sliceSource yields fixed readings; err, when set, ends every pass.
type sliceSource struct {
	readings []telemetry.Reading
	err      error
	passes   int
}

func (s *sliceSource) Scan(ctx context.Context, yield func(telemetry.Reading) error) (telemetry.ScanStats, error) {
	s.passes++
	for _, r := range s.readings {
		if err := ctx.Err(); err != nil {
			return telemetry.ScanStats{}, err
		}
		if err := yield(r); err != nil {
			return telemetry.ScanStats{}, err
		}
	}
	return telemetry.ScanStats{Rows: int64(len(s.readings)), Rejected: 1}, s.err
}

var t0 = time.Date(2025, 7, 18, 20, 42, 34, 0, time.UTC)

func readings(gpus, metrics int) []telemetry.Reading {
	var out []telemetry.Reading
	for m := range metrics {
		for g := range gpus {
			gpu := telemetry.GPU{UUID: fmt.Sprintf("GPU-%03d", g), Hostname: fmt.Sprintf("host-%d", g/8), Index: g % 8}
			out = append(out, telemetry.Reading{GPU: gpu, Sample: telemetry.Sample{
				GPU: gpu.UUID, Metric: fmt.Sprintf("M%d", m), Time: t0, Value: float64(g)}})
		}
	}
	return out
}

func drain(t *testing.T, topic *memqueue.Topic) []telemetry.Batch {
	t.Helper()
	topic.Close()
	var out []telemetry.Batch
	for {
		d, err := topic.Receive(context.Background())
		if errors.Is(err, memqueue.ErrClosed) {
			return out
		}
		require.NoError(t, err)
		out = append(out, d.Batch)
		d.Ack()
	}
}

func newTopic() *memqueue.Topic {
	return memqueue.New(memqueue.Options{Capacity: 1000}).Topic("batches")
}

var quiet = slog.New(slog.DiscardHandler)

func TestBatchesCoverEveryReadingOnce(t *testing.T) {
	src := &sliceSource{readings: readings(25, 4)} // 100 readings
	topic := newTopic()
	svc := stream.New(stream.Config{BatchSize: 30, KeepTimestamps: true}, src, topic, quiet, nil)
	require.NoError(t, svc.Run(context.Background()))

	batches := drain(t, topic)
	require.Len(t, batches, 4)
	var got []telemetry.Reading
	ids := map[string]bool{}
	for i, b := range batches {
		assert.Len(t, b.Samples, []int{30, 30, 30, 10}[i])
		assert.NotEmpty(t, b.ID)
		ids[b.ID] = true
		described := map[string]telemetry.GPU{}
		for _, g := range b.GPUs {
			assert.NotContains(t, described, g.UUID, "each GPU once per batch")
			described[g.UUID] = g
		}
		for _, smp := range b.Samples {
			require.Contains(t, described, smp.GPU)
			got = append(got, telemetry.Reading{GPU: described[smp.GPU], Sample: smp})
		}
	}
	assert.Len(t, ids, 4, "batch IDs are distinct")
	assert.Equal(t, src.readings, got, "every reading, in order, with file timestamps")
	st := svc.Stats()
	assert.Equal(t, stream.Stats{Passes: 1, Source: telemetry.ScanStats{Rows: 100, Rejected: 1}, Samples: 100, Batches: 4}, st)
}

// scrapes returns the readings of n scrapes of gpus GPUs, each scrape step after the one
// before it in source time.
func scrapes(n, gpus int, step time.Duration) []telemetry.Reading {
	var out []telemetry.Reading
	for i := range n {
		for _, r := range readings(gpus, 1) {
			r.Sample.Time = t0.Add(time.Duration(i) * step)
			out = append(out, r)
		}
	}
	return out
}

func TestTimestampsNowStampEachScrapeOnce(t *testing.T) {
	src := &sliceSource{readings: scrapes(4, 3, 2*time.Second)}
	src.readings[4].Sample.Time = time.Time{} // unreadable: belongs to the scrape it is in
	topic := newTopic()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return start }
	cfg := stream.Config{BatchSize: 100, Loop: true, Passes: 3}
	require.NoError(t, stream.New(cfg, src, topic, quiet, clock).Run(context.Background()))

	stamps := map[time.Time]int{}
	for _, b := range drain(t, topic) {
		for _, smp := range b.Samples {
			stamps[smp.Time]++
		}
	}
	// A pass spans the file's 6 s, and the next starts one step (2 s) after it.
	first := start
	want := map[time.Time]int{}
	for pass := range 3 {
		for scrape := range 4 {
			want[first.Add(time.Duration(pass*8+scrape*2)*time.Second)] = 3
		}
	}
	assert.Equal(t, want, stamps, "one timestamp a scrape, spaced as in the file")
}

func TestTimestampsNowWithoutSourceTimestamps(t *testing.T) {
	src := &sliceSource{readings: readings(3, 2)}
	for i := range src.readings {
		src.readings[i].Sample.Time = time.Time{}
	}
	topic := newTopic()
	require.NoError(t, stream.New(stream.Config{BatchSize: 100, Loop: true, Passes: 2}, src, topic, quiet, nil).Run(context.Background()))
	stamps := map[time.Time]int{}
	for _, b := range drain(t, topic) {
		for _, smp := range b.Samples {
			stamps[smp.Time]++
		}
	}
	require.Len(t, stamps, 2, "a pass is one scrape")
	var times []time.Time
	for ts, n := range stamps {
		assert.Equal(t, 6, n)
		times = append(times, ts)
	}
	assert.Equal(t, time.Second, times[0].Sub(times[1]).Abs(), "passes a second apart")
}

func TestSpeedPacesScrapes(t *testing.T) {
	src := &sliceSource{readings: scrapes(4, 5, time.Second)}
	topic := newTopic()
	start := time.Now()
	svc := stream.New(stream.Config{BatchSize: 100, Speed: 20}, src, topic, quiet, nil)
	require.NoError(t, svc.Run(context.Background()))
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, 150*time.Millisecond, "3 s of file at 20×")
	batches := drain(t, topic)
	require.Len(t, batches, 4, "each scrape published when its time comes")
	for i, b := range batches {
		require.Len(t, b.Samples, 5)
		if i > 0 {
			assert.Equal(t, time.Second, b.Samples[0].Time.Sub(batches[i-1].Samples[0].Time), "timestamps keep the file's spacing")
		}
	}
}

func TestShardsSplitGPUsExactlyOnce(t *testing.T) {
	all := readings(247, 2)
	owner := map[string]int{}
	total := 0
	for i := range 3 {
		shard := stream.Shard{Index: i, Count: 3}
		topic := newTopic()
		svc := stream.New(stream.Config{BatchSize: 100, KeepTimestamps: true, Shard: shard}, &sliceSource{readings: all}, topic, quiet, nil)
		require.NoError(t, svc.Run(context.Background()))
		for _, b := range drain(t, topic) {
			for _, smp := range b.Samples {
				prev, seen := owner[smp.GPU]
				assert.True(t, !seen || prev == i, "GPU %s in two shards", smp.GPU)
				owner[smp.GPU] = i
				total++
			}
		}
		assert.Positive(t, svc.Stats().OtherGPUs)
	}
	assert.Len(t, owner, 247)
	assert.Equal(t, len(all), total)
}

func TestLoopRunsUntilCancelled(t *testing.T) {
	src := &sliceSource{readings: readings(5, 2)}
	topic := memqueue.New(memqueue.Options{Capacity: 1 << 20}).Topic("batches")
	ctx, cancel := context.WithCancel(context.Background())
	svc := stream.New(stream.Config{BatchSize: 4, Loop: true}, src, topic, quiet, nil)
	done := make(chan error)
	go func() { done <- svc.Run(ctx) }()
	require.Eventually(t, func() bool { return topic.Stats().Queued > 30 }, 5*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done, "a cancelled streamer stops cleanly")
	assert.Greater(t, src.passes, 3)
}

func TestPassesBoundALoop(t *testing.T) {
	src := &sliceSource{readings: readings(5, 2)}
	topic := newTopic()
	svc := stream.New(stream.Config{BatchSize: 4, Loop: true, Passes: 3}, src, topic, quiet, nil)
	require.NoError(t, svc.Run(context.Background()))
	assert.Equal(t, 3, src.passes)
	assert.EqualValues(t, 30, svc.Stats().Samples)
	total := 0
	for _, b := range drain(t, topic) {
		total += len(b.Samples)
	}
	assert.Equal(t, 30, total)
}

func TestBatchesSpanPassesUnlessTimestampsRepeat(t *testing.T) {
	for _, keep := range []bool{false, true} {
		src := &sliceSource{readings: readings(5, 2)} // 10 a pass
		topic := newTopic()
		svc := stream.New(stream.Config{BatchSize: 4, Loop: true, Passes: 3, KeepTimestamps: keep}, src, topic, quiet, nil)
		require.NoError(t, svc.Run(context.Background()))
		var sizes []int
		ids := map[string]int{}
		for _, b := range drain(t, topic) {
			sizes = append(sizes, len(b.Samples))
			ids[b.ID]++
		}
		if keep {
			assert.Equal(t, []int{4, 4, 2, 4, 4, 2, 4, 4, 2}, sizes, "each pass flushed on its own")
			assert.Len(t, ids, 3, "passes of one file yield the same batches")
		} else {
			assert.Equal(t, []int{4, 4, 4, 4, 4, 4, 4, 2}, sizes, "stamped samples fill batches across passes")
			assert.Len(t, ids, 8)
		}
	}
}

func TestIntervalPacesBatches(t *testing.T) {
	src := &sliceSource{readings: readings(4, 1)}
	topic := newTopic()
	start := time.Now()
	svc := stream.New(stream.Config{BatchSize: 1, Interval: 25 * time.Millisecond, KeepTimestamps: true}, src, topic, quiet, nil)
	require.NoError(t, svc.Run(context.Background()))
	assert.GreaterOrEqual(t, time.Since(start), 75*time.Millisecond, "4 batches, 3 pauses")
	assert.Len(t, drain(t, topic), 4)
}

func TestSourceErrorStopsRun(t *testing.T) {
	boom := errors.New("csv x.csv: file is empty")
	svc := stream.New(stream.Config{BatchSize: 10}, &sliceSource{err: boom}, newTopic(), quiet, nil)
	assert.ErrorIs(t, svc.Run(context.Background()), boom)
}

func TestBatchIDFollowsContent(t *testing.T) {
	rs := readings(2, 2)
	b := telemetry.Batch{GPUs: []telemetry.GPU{rs[0].GPU, rs[1].GPU}}
	for _, r := range rs {
		b.Samples = append(b.Samples, r.Sample)
	}
	id := stream.BatchID(b)
	assert.Len(t, id, 32)
	assert.Equal(t, id, stream.BatchID(b), "same content, same ID")
	changed := b
	changed.Samples = append([]telemetry.Sample(nil), b.Samples...)
	changed.Samples[3].Value++
	assert.NotEqual(t, id, stream.BatchID(changed))
	changed.Samples[3].Value--
	changed.Samples[3].Time = changed.Samples[3].Time.Add(time.Microsecond)
	assert.NotEqual(t, id, stream.BatchID(changed))
}

// A live group published again — a remote_write request resent after a lost answer — makes
// the very same batches, which collectors store once.
func TestLiveRepublishingMakesTheSameBatches(t *testing.T) {
	topic := newTopic()
	live := stream.NewLive(topic, 7, 0, slog.New(slog.DiscardHandler))
	group := readings(5, 4) // 20 readings: batches of 7, 7 and 6
	require.NoError(t, live.Publish(context.Background(), group))
	require.NoError(t, live.Publish(context.Background(), group))
	batches := drain(t, topic)
	require.Len(t, batches, 6)
	for i := range 3 {
		assert.Equal(t, batches[i].ID, batches[i+3].ID, "batch %d of the resent group", i)
		assert.Equal(t, batches[i], batches[i+3])
	}
	assert.Len(t, batches[0].Samples, 7)
	assert.Len(t, batches[2].Samples, 6)
	assert.NotEqual(t, batches[0].ID, batches[1].ID)
	assert.Equal(t, stream.LiveStats{Groups: 2, Samples: 40, Batches: 6}, live.Stats())
}

// cancelAfterFirst is a publisher that ends the publishing context once it has accepted
// a batch, as a shutdown arriving mid-group does.
type cancelAfterFirst struct {
	cancel func()
	got    []telemetry.Batch
}

func (c *cancelAfterFirst) Publish(ctx context.Context, b telemetry.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.got = append(c.got, b)
	c.cancel()
	return nil
}

// A shutdown in the middle of a group lets the group's other batches through: a scrape is
// stored whole, not in part.
func TestLiveFinishesAGroupItStarted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pub := &cancelAfterFirst{cancel: cancel}
	live := stream.NewLive(pub, 7, 0, slog.New(slog.DiscardHandler))
	require.NoError(t, live.Publish(ctx, readings(5, 4)))
	assert.Len(t, pub.got, 3, "every batch of the group")
	assert.Error(t, live.Publish(ctx, readings(5, 4)), "a group not started when ctx ended is not")
	assert.Len(t, pub.got, 3)
}

// A sample stamped far ahead of the clock (a sender's year 2262) is refused and counted;
// the rest of its group is published, and the caller's readings are left as they were.
func TestLiveRefusesSamplesFromTheFuture(t *testing.T) {
	topic := newTopic()
	live := stream.NewLive(topic, 100, time.Minute, slog.New(slog.DiscardHandler))
	group := readings(4, 1)
	for i := range group {
		group[i].Sample.Time = time.Now()
	}
	group[1].Sample.Time = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
	group[3].Sample.Time = time.Now().Add(2 * time.Minute)
	group[2].Sample.Time = time.Now().Add(30 * time.Second) // a clock a little ahead: within the tolerance
	require.NoError(t, live.Publish(context.Background(), group))
	batches := drain(t, topic)
	require.Len(t, batches, 1)
	var gpus []string
	for _, s := range batches[0].Samples {
		gpus = append(gpus, s.GPU)
	}
	assert.Equal(t, []string{"GPU-000", "GPU-002"}, gpus)
	assert.Equal(t, stream.LiveStats{Groups: 1, Samples: 2, Batches: 1, Future: 2}, live.Stats())
	assert.Equal(t, 2262, group[1].Sample.Time.Year(), "the caller's readings untouched")
	assert.Equal(t, "GPU-001", group[1].Sample.GPU)
}
