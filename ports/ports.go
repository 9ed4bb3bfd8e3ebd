// Package ports declares what the domain services need from the outside world, as small
// interfaces in domain types. Each method's comment is its contract; the suites in
// ports/portstest check every adapter against it.
package ports

import (
	"context"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Source yields telemetry readings, for the streamer.
type Source interface {
	// Scan makes one pass over the source from its beginning, calling yield for each reading
	// in source order; every call starts again at the beginning, so a caller loops by calling
	// Scan again. A record that cannot be read is skipped and counted in the returned
	// ScanStats, never returned as an error. Scan stops and returns yield's error if yield
	// fails, ctx.Err() once ctx ends, or a one-line error when the source as a whole cannot be
	// read (missing, empty, required columns absent). Readings are yielded by value: the
	// callee may keep them.
	Scan(ctx context.Context, yield func(telemetry.Reading) error) (telemetry.ScanStats, error)
}

// Publisher hands batches to the queue, for the streamer.
type Publisher interface {
	// Publish returns nil once the queue has accepted the batch; from then on the batch is
	// delivered to a consumer at least once. When the queue is full Publish waits
	// (backpressure) rather than dropping anything, until ctx ends, and then returns
	// ctx.Err(). Batches published by one goroutine are delivered roughly in order, but
	// consumers must not rely on order. Publish is safe for concurrent use.
	Publish(ctx context.Context, b telemetry.Batch) error
}

// Consumer delivers queued batches, for the collector.
type Consumer interface {
	// Consume calls handle for queued batches, from up to the adapter's configured number of
	// goroutines at once, until ctx ends or the queue is closed and drained; then it waits
	// for running handlers and returns (nil once drained, ctx.Err() when cancelled).
	// Delivery is at least once: when handle returns nil the batch is acknowledged and never
	// delivered again; when it returns an error the batch is delivered again later, with
	// backoff, unless errors.Is(err, telemetry.ErrInvalid), in which case it is set aside
	// (dead-lettered, visible to operators) and never retried. A batch whose handler is
	// interrupted by ctx ending is delivered again.
	Consume(ctx context.Context, handle func(context.Context, telemetry.Batch) error) error
}

// BatchWriter stores batches, for the collector.
type BatchWriter interface {
	// WriteBatch stores the batch's GPUs and samples in one transaction: either all of them or
	// none. It is idempotent per batch ID: when a batch with the same ID was stored before,
	// it stores nothing and returns stored == false with a nil error, even when two calls
	// race. GPUs already known are updated with the batch's metadata. Errors are transient
	// (database unreachable, timeout, ctx ended) unless they match telemetry.ErrInvalid.
	WriteBatch(ctx context.Context, b telemetry.Batch) (stored bool, err error)
}

// Reader answers queries over stored telemetry, for the query service.
type Reader interface {
	// GPUs returns every known GPU ordered by hostname, then index, then UUID.
	GPUs(ctx context.Context) ([]telemetry.GPU, error)

	// Samples returns the GPU's samples within q.Range (inclusive at both ends), ordered by
	// time, then metric name, and sliced by q.Page. It returns an error matching
	// telemetry.ErrNotFound when no GPU has the UUID q.GPU.
	Samples(ctx context.Context, q telemetry.SampleQuery) ([]telemetry.Sample, error)

	// Stats counts stored samples, GPUs and hosts.
	Stats(ctx context.Context) (telemetry.Stats, error)
}
