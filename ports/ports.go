// Package ports declares what the domain services need from the outside world, as small
// interfaces in domain types. Each method's comment is its contract; the suites in
// ports/portstest check every adapter against it.
package ports

import (
	"context"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/access"
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

// LiveSource delivers telemetry as it happens (scrapes of exporters), for the streamer.
type LiveSource interface {
	// Run delivers readings until ctx ends, then returns nil. Each call of deliver carries
	// one group of readings that arrived together — one scrape of one target — every
	// reading of which has the same time; deliver returns nil once the group is accepted,
	// and may wait (backpressure). Groups may be delivered from several goroutines at once.
	// A group deliver fails on is reported and dropped: a live source cannot read the past
	// again. A target that cannot be read never stops Run; Run returns an error only when it
	// cannot start at all (its configuration cannot be read).
	Run(ctx context.Context, deliver func(context.Context, []telemetry.Reading) error) error
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
	// WriteBatch stores the batch's samples in one transaction: either all of them or none.
	// It is idempotent per batch ID: when a batch with the same ID was stored before, it
	// stores nothing and returns stored == false with a nil error, even when two calls race.
	// The store keeps each sample once by its device, metric and time: one already stored
	// — by another batch, or earlier in the same batch — is left out, and the first stored
	// value stays. The batch's GPUs are registered first (idempotently too), new ones added
	// and known ones updated with the batch's metadata. Errors are transient (database
	// unreachable, timeout, ctx ended) unless they match telemetry.ErrInvalid.
	WriteBatch(ctx context.Context, b telemetry.Batch) (stored bool, err error)

	// WriteBatches stores several batches in one transaction, each as WriteBatch would, in
	// order (a sample of an earlier batch wins over the same in a later one): written[i]
	// says whether batches[i] was stored by this call — false when its ID was stored before
	// or comes earlier in the same call — and how many of its samples were left out as
	// already stored. On an error nothing is stored.
	WriteBatches(ctx context.Context, batches []telemetry.Batch) (written []telemetry.Written, err error)
}

// Inventory answers what exists, for the query service.
type Inventory interface {
	// GPUs returns the devices matching f — GPUs and MIG instances — ordered by hostname,
	// then index, then UUID, then instance number (a GPU's instances after it), each with the
	// times of its first and last stored samples (zero when it has none, or with f.NoSpan).
	// With f.After, only GPUs after that position; with f.Limit > 0, the devices of that many
	// GPUs (distinct hostname, index and UUID) at most. It holds no more than one page in
	// memory.
	GPUs(ctx context.Context, f telemetry.GPUFilter) ([]telemetry.GPUInfo, error)

	// Hosts returns the hosts named after f.After (all when ""), by hostname, f.Limit at most
	// when > 0, each with its number of GPUs and last sample time.
	Hosts(ctx context.Context, f telemetry.HostFilter) ([]telemetry.Host, error)

	// Metrics returns the names of every metric stored, sorted.
	Metrics(ctx context.Context) ([]string, error)
}

// SampleReader reads one GPU's samples, for the query service. Each method returns an error
// matching telemetry.ErrNotFound when no GPU has the UUID asked for.
type SampleReader interface {
	// Samples calls fn with the GPU's samples within q.Range (inclusive at both ends) of
	// q.Metrics (all when empty), ordered by time, then by a fixed per-metric order — both
	// reversed when q.Desc — streaming them from the database. It stops at fn's first
	// error, which it returns; once ctx ends, its next read of the database fails. With q.Page.Limit > 0 it calls fn for one page: that many
	// samples at most after q.Page.Cursor when set (paging by cursor never skips or repeats a
	// sample, even while samples arrive), else after q.Page.Offset; next is then the cursor
	// of the page after, "" when no sample follows. With q.Page.Limit == 0 it calls fn for
	// every sample after the cursor or offset and next is "". A cursor the store did not make
	// gives an error matching telemetry.ErrInvalid.
	Samples(ctx context.Context, q telemetry.SampleQuery, fn func(telemetry.Sample) error) (next string, err error)
	// Latest returns the most recent sample of every metric the GPU reported, by metric name.
	Latest(ctx context.Context, uuid string) ([]telemetry.Sample, error)
}

// SeriesReader reads many devices' samples in one pass, for queries across a fleet (the
// PromQL API).
type SeriesReader interface {
	// Series calls fn with every series of q.GPUs' samples within q.Range (inclusive at both
	// ends) of q.Metrics (all when empty): the samples Samples returns for each device, one
	// call per device, metric and workload, its points in time order. A device's series come
	// one after another, by metric name, then workload; devices come in no set order; an
	// unknown device has none. fn may keep the series. Series stops at fn's first error and
	// returns it.
	Series(ctx context.Context, q telemetry.SeriesQuery, fn func(telemetry.Series) error) error
}

// SummaryReader reads many devices' series summarised in the buckets of a downsampled tier,
// for questions over long windows.
type SummaryReader interface {
	// SummarySteps are the bucket durations of the tiers kept, finest first.
	SummarySteps() []time.Duration
	// Summaries calls fn with every series of q.GPUs within q.Range (inclusive at both ends,
	// both set) of q.Metrics (all when empty), its samples summarised in buckets of q.Step
	// (one of SummarySteps) aligned to the Unix epoch: the count, sum, min, max and last of
	// the samples Series returns for it in each bucket — the same answer whether the store
	// reads a tier or, where its tier does not hold a bucket whole yet (a window still open,
	// a bucket q.Range cuts), the samples. A bucket whose samples retention deleted is
	// answered from the tier while the tier keeps it, but for the buckets of a window
	// q.Range cuts, which only the samples could answer: those are absent. Values that are not finite are left
	// out; a bucket of none is absent. One call per device, metric and workload, its
	// summaries by start; an unknown device has none. A step that is not a tier's gives an
	// error matching telemetry.ErrInvalid. It stops at fn's first error and returns it.
	Summaries(ctx context.Context, q telemetry.SummaryQuery, fn func(telemetry.SummarySeries) error) error
	// DeletedBefore returns the time before which retention has deleted samples — from it
	// on, every sample is kept; the tiers keep their buckets longer — and the zero time while
	// it has deleted none (a store that merely starts later is no gap): cheap enough to ask
	// on every query.
	DeletedBefore(ctx context.Context) (time.Time, error)
}

// Summarizer tells how much is stored, for the query service.
type Summarizer interface {
	// Stats counts stored samples, GPUs and hosts, and finds the oldest and newest samples.
	Stats(ctx context.Context) (telemetry.Stats, error)
}

// WorkloadStore keeps workload records and the hourly usage sums, for the recorder that
// makes them from the samples and the API that reads them.
type WorkloadStore interface {
	// LockRecorder takes the recorder's lock when no other process holds it (ok false
	// otherwise, at once), until unlock is called: a pass made by one process of many saves
	// the others reading the same samples. The lock only saves work: RecordWorkloads stays
	// safe without it.
	LockRecorder(ctx context.Context) (unlock func(), ok bool, err error)
	// OpenWorkloads returns where the recorder is — how far records are made (zero before
	// the first pass), until when passes redo the hourly usage only, and the store's clock
	// now — and the records still open, read after it.
	OpenWorkloads(ctx context.Context) (telemetry.RecorderState, []telemetry.Workload, error)
	// RecordWorkloads stores one pass, made from the state OpenWorkloads returned,
	// atomically and only if no other pass was recorded since (else it stores nothing and
	// returns false: each interval of samples is recorded once, however many processes
	// record): a record with ID 0 is added (its ID is set), one with an ID replaces that
	// record whole, each usage part is added to its hour's sums, and records are then made
	// through to. Where batches stored since the previous pass began hold samples before
	// the interval that pass recorded — samples that arrived late, which it may not have
	// seen — it moves the cursor back to their hour (not before the oldest sample kept),
	// drops the hourly sums from there, and has passes until to redo them. It returns where
	// the cursor is then: to, or before it when it moved back. A pass of no time (to at the
	// cursor) records nothing but this search.
	RecordWorkloads(ctx context.Context, state telemetry.RecorderState, to time.Time, records []telemetry.Workload, usage []telemetry.UsagePart) (through time.Time, recorded bool, err error)
	// Workloads returns the records q selects, in its order, and the position after the
	// last when more follow (nil otherwise). Values that are NaN stay NaN.
	Workloads(ctx context.Context, q telemetry.WorkloadQuery) ([]telemetry.Workload, *telemetry.WorkloadPosition, error)
	// UsageParts returns the usage parts of [from, until), summed per device and per what
	// q.Per keeps of the workload (the rest left empty; Start zero), matching q's filters.
	// q.Range's ends are whole hours. from is q.Range.Start, or the start of its day where
	// the store no longer keeps that hour's sums (only its day's); until is q.Range.End, or
	// how far usage is recorded when that is earlier (not after from: nothing recorded
	// there).
	UsageParts(ctx context.Context, q telemetry.UsagePartQuery) (parts []telemetry.UsagePart, from, until time.Time, err error)
}

// Authenticator tells who sends a request, for the HTTP server.
type Authenticator interface {
	// Authenticate returns the name and role of the user or bearer token the credentials
	// name; a name "" when every request is anonymous.
	// Missing, unknown or wrong credentials all give access.ErrUnauthenticated, alike, so
	// that nobody learns which users exist. Repeated valid credentials are answered fast
	// (password hashes are slow on purpose). Safe for concurrent use.
	Authenticate(ctx context.Context, c access.Credentials) (access.Identity, error)
}
