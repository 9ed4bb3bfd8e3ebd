package stream

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// Live publishes telemetry that arrives by itself — the scrapes of a live source, the
// requests of a remote_write receiver — as batches. A group of readings (one scrape, one
// request) is cut into batches in its own order, each batch's ID derived from its content:
// publishing the same group again, as a sender retrying after a lost answer does, yields the
// same batches, which collectors store once. It is safe for concurrent use.
type Live struct {
	pub       ports.Publisher
	batchSize int
	log       *slog.Logger
	future    time.Duration    // how far ahead of the clock a sample may be
	now       func() time.Time // the clock

	mu            sync.Mutex
	stats         LiveStats
	lastLog       time.Time
	lastFutureLog time.Time
}

// LiveStats counts what Live published.
type LiveStats struct {
	Groups  int64 // scrapes or requests published whole
	Samples int64 // samples published
	Batches int64 // batches published
	Future  int64 // samples refused as stamped too far ahead of the clock
}

// NewLive returns a Live publishing batches of at most batchSize samples, refusing samples
// stamped more than future (telemetry.DefaultFutureTolerance when 0) ahead of the clock.
func NewLive(pub ports.Publisher, batchSize int, future time.Duration, log *slog.Logger) *Live {
	if future <= 0 {
		future = telemetry.DefaultFutureTolerance
	}
	return &Live{pub: pub, batchSize: max(batchSize, 1), log: log, lastLog: time.Now(), future: future, now: time.Now}
}

// finishTimeout is how long a group's remaining batches may take once ctx has ended.
const finishTimeout = 10 * time.Second

// Publish publishes the readings and returns nil once the queue has accepted all of them.
// It waits while the queue is full (backpressure) until ctx ends. Once the first batch is
// accepted the rest follow even if ctx ends meanwhile (a shutdown), for finishTimeout at
// most, so that a group is stored whole. On an error some batches of the group may have
// been accepted already, which is harmless: publishing the group again stores each sample
// once.
func (l *Live) Publish(ctx context.Context, readings []telemetry.Reading) error {
	readings = l.dropFuture(ctx, readings)
	var samples, batches int64
	pubCtx := ctx
	for start := 0; start < len(readings); start += l.batchSize {
		b := batchOf(readings[start:min(start+l.batchSize, len(readings))])
		if err := l.pub.Publish(pubCtx, b); err != nil {
			return fmt.Errorf("publish batch: %w", err)
		}
		if batches == 0 && start+l.batchSize < len(readings) {
			var cancel context.CancelFunc
			pubCtx, cancel = context.WithCancel(context.WithoutCancel(ctx))
			defer cancel()
			stop := context.AfterFunc(ctx, func() { time.AfterFunc(finishTimeout, cancel) })
			defer stop()
		}
		samples += int64(len(b.Samples))
		batches++
	}
	l.count(ctx, samples, batches)
	return nil
}

// dropFuture leaves out, counts and logs (the first of each minute) the readings stamped
// too far ahead of the clock. The usual group has none and is returned as it is.
func (l *Live) dropFuture(ctx context.Context, readings []telemetry.Reading) []telemetry.Reading {
	limit := l.now().Add(l.future)
	first := -1
	for i := range readings {
		if readings[i].Sample.Time.After(limit) {
			first = i
			break
		}
	}
	if first < 0 {
		return readings
	}
	kept := readings[:first:first] // a copy from the first: the caller's slice stays as it was
	var dropped int64
	for _, r := range readings[first:] {
		if r.Sample.Time.After(limit) {
			if dropped == 0 {
				l.warnFuture(ctx, r, telemetry.CheckNotFuture(r.Sample.Time, limit.Add(-l.future), l.future))
			}
			dropped++
			continue
		}
		kept = append(kept, r)
	}
	l.mu.Lock()
	l.stats.Future += dropped
	l.mu.Unlock()
	return kept
}

// warnFuture logs a sample refused as from the future, once a minute at most.
func (l *Live) warnFuture(ctx context.Context, r telemetry.Reading, err error) {
	l.mu.Lock()
	due := time.Since(l.lastFutureLog) >= time.Minute
	if due {
		l.lastFutureLog = time.Now()
	}
	l.mu.Unlock()
	if due {
		l.log.WarnContext(ctx, "samples stamped ahead of the clock refused (logged once a minute)", "gpu", r.Sample.GPU,
			"metric", r.Sample.Metric, "err", err)
	}
}

// Run publishes what src delivers until ctx ends.
func (l *Live) Run(ctx context.Context, src ports.LiveSource) error {
	err := src.Run(ctx, l.Publish)
	st := l.Stats()
	l.log.InfoContext(ctx, "live source stopped", "scrapes", st.Groups, "samples", st.Samples, "batches", st.Batches)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Stats returns the counts so far.
func (l *Live) Stats() LiveStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

func (l *Live) count(ctx context.Context, samples, batches int64) {
	l.mu.Lock()
	l.stats.Groups++
	l.stats.Samples += samples
	l.stats.Batches += batches
	st := l.stats
	due := time.Since(l.lastLog) >= 10*time.Second
	if due {
		l.lastLog = time.Now()
	}
	l.mu.Unlock()
	if due {
		l.log.InfoContext(ctx, "publishing live telemetry", "groups", st.Groups, "samples", st.Samples, "batches", st.Batches)
	}
}

// batchOf makes a batch of readings, each device described once, with its content's ID.
func batchOf(readings []telemetry.Reading) telemetry.Batch {
	b := telemetry.Batch{Samples: make([]telemetry.Sample, len(readings))}
	seen := make(map[string]int) // device key → its index in b.GPUs
	for i, r := range readings {
		b.Samples[i] = r.Sample
		if at, ok := seen[r.Sample.GPU]; ok {
			b.GPUs[at] = b.GPUs[at].WithFamilyLabelsOf(r.GPU)
			continue
		}
		seen[r.Sample.GPU] = len(b.GPUs)
		b.GPUs = append(b.GPUs, r.GPU)
	}
	b.ID = BatchID(b)
	return b
}
