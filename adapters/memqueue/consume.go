package memqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jpillora/backoff"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Consume implements ports.Consumer with Options.Workers handlers at once. It returns nil
// once the topic is closed and drained, ctx.Err() when ctx ends first.
func (t *Topic) Consume(ctx context.Context, handle func(context.Context, telemetry.Batch) error) error {
	var wg sync.WaitGroup
	for range t.opts.Workers {
		wg.Go(func() {
			for {
				d, err := t.Receive(ctx)
				if err != nil { // closed and drained, or ctx ended
					return
				}
				t.settleAfter(ctx, d, safeCall(ctx, handle, d.Batch))
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// ConsumeAndDrain consumes as Consume until ctx ends, then closes the topic and goes on
// until it is drained — what it holds exists nowhere else — for grace at most. Past grace it
// stops the handlers and returns an error counting the accepted samples not stored.
func (t *Topic) ConsumeAndDrain(ctx context.Context, handle func(context.Context, telemetry.Batch) error, grace time.Duration) error {
	consumeCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- t.Consume(consumeCtx, handle) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t.Close()
	st := t.Stats()
	t.opts.Logger.InfoContext(ctx, "draining queue", "queued", st.Queued, "in_flight", st.InFlight, "samples", st.Samples)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		cancel()
		<-done
		st := t.Stats()
		return fmt.Errorf("queue not drained within %s: %d accepted samples (%d batches) not stored", grace, st.Samples, st.Queued+st.InFlight)
	}
}

// settleAfter is the one place that decides what a handler's result means for the batch:
// success acknowledges it, invalid input dead-letters it, anything else (a database that is
// down, a timeout, shutdown interrupting the handler) delivers it again after a backoff.
func (t *Topic) settleAfter(ctx context.Context, d *Delivery, err error) {
	log := t.opts.Logger
	switch {
	case err == nil:
		d.Ack()
	case errors.Is(err, telemetry.ErrInvalid):
		log.ErrorContext(ctx, "batch dead-lettered: it can never be stored",
			"topic", t.name, "batch", d.Batch.ID, "attempt", d.Attempt, "err", err)
		d.DeadLetter()
	case ctx.Err() != nil:
		d.Nack(0) // interrupted by shutdown: whoever consumes next takes it at once
	default:
		delay := t.backoff(d.Attempt)
		// Every failure is logged, but only the 1st, 2nd, 4th, 8th… of a batch as a warning:
		// an outage of minutes should not bury everything else in the log.
		level := slog.LevelDebug
		if d.Attempt&(d.Attempt-1) == 0 {
			level = slog.LevelWarn
		}
		log.Log(ctx, level, "batch failed, will retry",
			"topic", t.name, "batch", d.Batch.ID, "attempt", d.Attempt, "retry_in", delay, "err", err)
		d.Nack(delay)
	}
}

// backoff is the delay before the attempt-th delivery's redelivery: MinBackoff, doubling up
// to MaxBackoff.
func (t *Topic) backoff(attempt int) time.Duration {
	b := backoff.Backoff{Min: t.opts.MinBackoff, Max: t.opts.MaxBackoff}
	return b.ForAttempt(float64(attempt - 1))
}

// safeCall runs handle, turning a panic into an error so that the batch is retried and the
// consumer survives.
func safeCall(ctx context.Context, handle func(context.Context, telemetry.Batch) error, b telemetry.Batch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return handle(ctx, b)
}
