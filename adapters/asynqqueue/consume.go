package asynqqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jpillora/backoff"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Consume implements ports.Consumer with an asynq server of Options.Concurrency workers. It
// runs until ctx ends, then stops taking batches, gives running handlers ShutdownTimeout to
// finish and returns the rest to the queue. While Redis is unreachable it keeps retrying.
// Meanwhile it gives back the batches of collectors that stopped (reclaim.go).
func (q *Queue) Consume(ctx context.Context, handle func(context.Context, telemetry.Batch) error) error {
	// Handlers run on a context that outlives ctx by the shutdown grace period: a batch
	// being written when shutdown begins is finished, not torn.
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()

	// The server has a connection of its own, closed by Shutdown, so that closing the
	// queue cannot pull Redis from under a consumer still stopping.
	srv := asynq.NewServer(q.connOpt, asynq.Config{
		Concurrency:              q.opts.Concurrency,
		Queues:                   map[string]int{q.opts.Name: 1},
		BaseContext:              func() context.Context { return handlerCtx },
		RetryDelayFunc:           q.retryDelay,
		ErrorHandler:             asynq.ErrorHandlerFunc(q.reportFailure),
		Logger:                   asynqLogger{q.opts.Logger},
		LogLevel:                 asynq.WarnLevel,
		ShutdownTimeout:          q.opts.ShutdownTimeout,
		TaskCheckInterval:        q.opts.PollInterval,
		DelayedTaskCheckInterval: q.opts.PollInterval,
	})
	err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		return q.process(ctx, t, handle)
	}))
	if err != nil {
		return fmt.Errorf("start consumer: %w", err)
	}
	q.reclaim(ctx)
	srv.Shutdown()
	return ctx.Err()
}

// process is the one place that decides what a handler's result means for the task: success
// completes it; a payload that cannot be decoded, an unknown task type or invalid input
// archive it (asynq.SkipRetry) where operators can see it; any other error (the database is
// down, a timeout, shutdown) makes asynq deliver it again after retryDelay.
func (q *Queue) process(ctx context.Context, t *asynq.Task, handle func(context.Context, telemetry.Batch) error) error {
	b, err := decode(t.Type(), t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	err = handle(ctx, b)
	if errors.Is(err, telemetry.ErrInvalid) {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return err
}

// retryDelay is the delay before a batch that failed attempt times is delivered again:
// MinBackoff, doubling up to MaxBackoff.
func (q *Queue) retryDelay(attempt int, _ error, _ *asynq.Task) time.Duration {
	b := backoff.Backoff{Min: q.opts.MinBackoff, Max: q.opts.MaxBackoff}
	return b.ForAttempt(float64(attempt))
}

func (q *Queue) reportFailure(ctx context.Context, t *asynq.Task, err error) {
	id, _ := asynq.GetTaskID(ctx)
	retried, _ := asynq.GetRetryCount(ctx)
	if errors.Is(err, asynq.SkipRetry) {
		q.opts.Logger.ErrorContext(ctx, "batch archived: it can never be stored", "queue", q.opts.Name,
			"task", id, "type", t.Type(), "err", err)
		return
	}
	// Only the 1st, 2nd, 4th, 8th… failure of a batch is a warning: an outage of minutes
	// should not bury everything else in the log.
	level := slog.LevelDebug
	if attempt := retried + 1; attempt&(attempt-1) == 0 {
		level = slog.LevelWarn
	}
	q.opts.Logger.Log(ctx, level, "batch failed, will retry", "queue", q.opts.Name, "task", id,
		"retried", retried, "retry_in", q.retryDelay(retried, err, t), "err", err)
}

// asynqLogger sends asynq's messages to slog.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug("asynq: " + fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info("asynq: " + fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn("asynq: " + fmt.Sprint(args...)) }
func (l asynqLogger) Error(args ...any) { l.log.Error("asynq: " + fmt.Sprint(args...)) }

// Fatal logs at error level; this process decides for itself when to exit.
func (l asynqLogger) Fatal(args ...any) { l.log.Error("asynq: " + fmt.Sprint(args...)) }
