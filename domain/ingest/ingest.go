// Package ingest is the collector's service: it checks each batch that arrives from the queue
// and stores it, once, however often it is delivered.
//
// Batches handled at the same time are written together (group commit): a handler that
// finds a writer free writes every batch waiting, its own included, in one transaction. A
// collector under load thus writes many small batches — a remote_write request is a batch
// of 2,000 samples or fewer — at the cost of a few big ones, and an idle one writes each
// batch as it comes, without waiting for company.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// Result is what became of one batch.
type Result struct {
	Stored        bool // false when the batch had been stored before
	Samples       int  // samples stored
	Rejected      int  // invalid samples left out
	AlreadyStored int  // samples left out as stored before, by another batch
}

// Stats counts what a collector has done since it started.
type Stats struct {
	Batches    int64 // batches stored
	Duplicates int64 // redelivered batches recognised and skipped
	Samples    int64 // samples stored
	Rejected   int64 // invalid samples left out
	// AlreadyStored counts samples of new batches that were stored before in other
	// batches (a file replayed with another batch size, an overlapping resend), left out.
	AlreadyStored int64
}

// Service stores batches through a BatchWriter. It is safe for concurrent use.
type Service struct {
	w    ports.BatchWriter
	log  *slog.Logger
	opts Options

	writers chan struct{} // a token per write in progress
	gmu     sync.Mutex
	waiting []*pending // batches handed to Ingest, not yet taken by a writer

	mu      sync.Mutex
	stats   Stats
	lastLog time.Time
	failing error     // the last write's error, until a write succeeds
	since   time.Time // when writes began to fail
}

// Options tune a Service; zero fields take the defaults given.
type Options struct {
	Logger        *slog.Logger  // nil discards
	ProgressEvery time.Duration // how often a progress line is logged; 0 means 10s
	Writers       int           // writes in progress at once; 0 means 1
	GroupSamples  int           // a write takes waiting batches up to this many samples; 0 means 50,000

	// Observe, when set, is told of every write to the store: how many batches it carried,
	// how long it took and its error (nil when stored). It is called from the writing
	// goroutine, so it must be quick.
	Observe func(batches int, took time.Duration, err error)
}

// pending is a batch waiting for its write, and then its outcome.
type pending struct {
	batch   telemetry.Batch
	done    chan struct{}
	written telemetry.Written
	err     error
}

// New returns a service storing batches through w.
func New(w ports.BatchWriter, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 10 * time.Second
	}
	opts.Writers = max(opts.Writers, 1)
	if opts.GroupSamples <= 0 {
		opts.GroupSamples = 50_000
	}
	return &Service{w: w, log: opts.Logger, opts: opts, writers: make(chan struct{}, opts.Writers), lastLog: time.Now()}
}

// Ingest stores the batch's valid samples and reports what it did. Invalid samples (no GPU,
// no metric, no time, a value that is not finite, text the store cannot keep, a GPU the
// batch does not describe or describes with such text) are left out and counted; the rest
// are stored: one bad sample never costs its batch. A batch without an ID can never be
// deduplicated and is refused with an error matching telemetry.ErrInvalid. Storage errors
// are returned as they are: the queue retries the batch.
func (s *Service) Ingest(ctx context.Context, b telemetry.Batch) (Result, error) {
	if b.ID == "" {
		return Result{}, telemetry.Invalid("batch.id", "is empty")
	}
	clean, rejected, firstReason := validSamples(b)
	if rejected > 0 {
		s.log.WarnContext(ctx, "invalid samples left out of batch", "batch", b.ID,
			"rejected", rejected, "of", len(b.Samples), "first_reason", firstReason)
	}
	written, err := s.commit(ctx, clean)
	if err != nil {
		return Result{}, fmt.Errorf("store batch %s: %w", b.ID, err)
	}
	res := Result{Stored: written.Stored, Rejected: rejected}
	if written.Stored {
		res.Samples, res.AlreadyStored = len(clean.Samples)-written.AlreadyStored, written.AlreadyStored
	} else {
		s.log.DebugContext(ctx, "batch already stored, skipped", "batch", b.ID)
	}
	s.count(ctx, res)
	return res, nil
}

// commit stores b together with the batches other handlers are storing meanwhile, and
// reports what the store did with it.
func (s *Service) commit(ctx context.Context, b telemetry.Batch) (telemetry.Written, error) {
	p := &pending{batch: b, done: make(chan struct{})}
	s.gmu.Lock()
	s.waiting = append(s.waiting, p)
	s.gmu.Unlock()
	for {
		select {
		case <-p.done:
			return p.written, p.err
		case <-ctx.Done():
			// p may still be written by another handler's write; the queue delivers the
			// batch again, which then stores nothing.
			return telemetry.Written{}, ctx.Err()
		case s.writers <- struct{}{}:
			group := s.take()
			if len(group) > 0 {
				s.write(ctx, group)
			}
			<-s.writers
			if len(group) == 0 { // another write took p
				select {
				case <-p.done:
					return p.written, p.err
				case <-ctx.Done():
					return telemetry.Written{}, ctx.Err()
				}
			}
		}
	}
}

// take removes the batches a write takes from those waiting: the oldest first, up to
// GroupSamples samples, at least one.
func (s *Service) take() []*pending {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	n, samples := 0, 0
	for n < len(s.waiting) && (n == 0 || samples+len(s.waiting[n].batch.Samples) <= s.opts.GroupSamples) {
		samples += len(s.waiting[n].batch.Samples)
		n++
	}
	group := slices.Clone(s.waiting[:n])
	s.waiting = slices.Delete(s.waiting, 0, n)
	return group
}

// write stores a group of batches in one transaction and hands each its outcome.
func (s *Service) write(ctx context.Context, group []*pending) {
	batches := make([]telemetry.Batch, len(group))
	for i, p := range group {
		batches[i] = p.batch
	}
	start := time.Now()
	written, err := s.w.WriteBatches(ctx, batches)
	if s.opts.Observe != nil {
		s.opts.Observe(len(batches), time.Since(start), err)
	}
	s.noteWrite(err)
	if errors.Is(err, telemetry.ErrInvalid) && len(group) > 1 {
		// One batch the store refuses must not cost the others theirs: each on its own.
		for _, p := range group {
			s.write(ctx, []*pending{p})
		}
		return
	}
	for i, p := range group {
		if err != nil {
			p.err = err
		} else {
			p.written = written[i]
		}
		close(p.done)
	}
}

// noteWrite keeps the outcome of the last write: a store that cannot write (a full disk, a
// read-only database) makes Failing report it until a write succeeds again.
func (s *Service) noteWrite(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.failing = nil
	case errors.Is(err, telemetry.ErrInvalid), errors.Is(err, context.Canceled):
		// a batch refused, or a stop: not the store's state
	default:
		if s.failing == nil {
			s.since = time.Now()
		}
		s.failing = err
	}
}

// Failing returns why writes fail, and since when, while the last write failed; nil once
// one succeeds.
func (s *Service) Failing() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing == nil {
		return nil
	}
	return fmt.Errorf("writes failing for %s: %w", time.Since(s.since).Round(time.Second), s.failing)
}

// Stats returns the counts so far.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Service) count(ctx context.Context, r Result) {
	s.mu.Lock()
	if r.Stored {
		s.stats.Batches++
		s.stats.Samples += int64(r.Samples)
		s.stats.Rejected += int64(r.Rejected)
		s.stats.AlreadyStored += int64(r.AlreadyStored)
	} else {
		s.stats.Duplicates++
	}
	now := time.Now()
	due := now.Sub(s.lastLog) >= s.opts.ProgressEvery
	if due {
		s.lastLog = now
	}
	stats := s.stats
	s.mu.Unlock()
	if due {
		s.LogProgress(ctx, stats, "collecting")
	}
}

// LogProgress logs one line with the counts.
func (s *Service) LogProgress(ctx context.Context, st Stats, msg string) {
	s.log.InfoContext(ctx, msg, "batches", st.Batches, "samples", st.Samples,
		"duplicates", st.Duplicates, "rejected", st.Rejected, "already_stored", st.AlreadyStored)
}

// validSamples returns the batch without its invalid samples and GPUs, how many samples it
// dropped, and why the first was dropped.
func validSamples(b telemetry.Batch) (telemetry.Batch, int, string) {
	gpus := make(map[string]bool, len(b.GPUs))
	refused := map[string]string{} // devices whose description the store could not keep, and why
	clean := telemetry.Batch{ID: b.ID, GPUs: make([]telemetry.GPU, 0, len(b.GPUs))}
	for _, g := range b.GPUs {
		key := g.Key()
		if err := g.Validate(); err != nil {
			refused[key] = "GPU " + key + ": " + err.Error()
			continue
		}
		if !gpus[key] {
			gpus[key] = true
			clean.GPUs = append(clean.GPUs, g)
		}
	}
	rejected, first := 0, ""
	reject := func(reason string) {
		if rejected == 0 {
			first = reason
		}
		rejected++
	}
	clean.Samples = make([]telemetry.Sample, 0, len(b.Samples))
	var last *telemetry.Sample // the last valid sample: samples come in runs of one device
	for i := range b.Samples {
		smp := &b.Samples[i]
		if err := smp.ValidateAfter(last); err != nil {
			reject(err.Error())
			continue
		}
		if last != nil && smp.GPU == last.GPU {
			clean.Samples = append(clean.Samples, *smp)
			last = smp
			continue
		}
		if !gpus[smp.GPU] {
			if why, ok := refused[smp.GPU]; ok {
				reject(why)
			} else {
				reject(fmt.Sprintf("uuid: GPU %s is not described in the batch", smp.GPU))
			}
			continue
		}
		clean.Samples = append(clean.Samples, *smp)
		last = smp
	}
	if rejected == 0 && len(refused) == 0 {
		return b, 0, ""
	}
	return clean, rejected, first
}
