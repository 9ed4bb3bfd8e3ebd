// Package ingest is the collector's service: it checks each batch that arrives from the queue
// and stores it, once, however often it is delivered.
package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// Result is what became of one batch.
type Result struct {
	Stored   bool // false when the batch had been stored before
	Samples  int  // samples stored
	Rejected int  // invalid samples left out
}

// Stats counts what a collector has done since it started.
type Stats struct {
	Batches    int64 // batches stored
	Duplicates int64 // redelivered batches recognised and skipped
	Samples    int64 // samples stored
	Rejected   int64 // invalid samples left out
}

// Service stores batches through a BatchWriter. It is safe for concurrent use.
type Service struct {
	w   ports.BatchWriter
	log *slog.Logger

	mu            sync.Mutex
	stats         Stats
	progressEvery time.Duration
	lastLog       time.Time
}

// New returns a service logging a progress line at most every progressEvery (0: 10s).
func New(w ports.BatchWriter, log *slog.Logger, progressEvery time.Duration) *Service {
	if progressEvery <= 0 {
		progressEvery = 10 * time.Second
	}
	return &Service{w: w, log: log, progressEvery: progressEvery, lastLog: time.Now()}
}

// Ingest stores the batch's valid samples and reports what it did. Invalid samples (no GPU,
// no metric, no time, a value that is not finite, a GPU the batch does not describe) are left
// out and counted; the rest are stored. A batch without an ID can never be deduplicated and
// is refused with an error matching telemetry.ErrInvalid. Storage errors are returned as
// they are: the queue retries the batch.
func (s *Service) Ingest(ctx context.Context, b telemetry.Batch) (Result, error) {
	if b.ID == "" {
		return Result{}, telemetry.Invalid("batch.id", "is empty")
	}
	clean, rejected, firstReason := validSamples(b)
	if rejected > 0 {
		s.log.WarnContext(ctx, "invalid samples left out of batch", "batch", b.ID,
			"rejected", rejected, "of", len(b.Samples), "first_reason", firstReason)
	}
	stored, err := s.w.WriteBatch(ctx, clean)
	if err != nil {
		return Result{}, fmt.Errorf("store batch %s: %w", b.ID, err)
	}
	res := Result{Stored: stored, Rejected: rejected}
	if stored {
		res.Samples = len(clean.Samples)
	} else {
		s.log.DebugContext(ctx, "batch already stored, skipped", "batch", b.ID)
	}
	s.count(ctx, res)
	return res, nil
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
	} else {
		s.stats.Duplicates++
	}
	now := time.Now()
	due := now.Sub(s.lastLog) >= s.progressEvery
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
		"duplicates", st.Duplicates, "rejected", st.Rejected)
}

// validSamples returns the batch without its invalid samples and GPUs, how many samples it
// dropped, and why the first was dropped.
func validSamples(b telemetry.Batch) (telemetry.Batch, int, string) {
	gpus := make(map[string]bool, len(b.GPUs))
	clean := telemetry.Batch{ID: b.ID, GPUs: make([]telemetry.GPU, 0, len(b.GPUs))}
	for _, g := range b.GPUs {
		if key := g.Key(); g.UUID != "" && !gpus[key] {
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
	for _, smp := range b.Samples {
		if err := smp.Validate(); err != nil {
			reject(err.Error())
			continue
		}
		if !gpus[smp.GPU] {
			reject(fmt.Sprintf("uuid: GPU %s is not described in the batch", smp.GPU))
			continue
		}
		clean.Samples = append(clean.Samples, smp)
	}
	if rejected == 0 {
		return b, 0, ""
	}
	return clean, rejected, first
}
