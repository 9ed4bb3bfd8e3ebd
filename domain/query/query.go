// Package query answers questions about stored telemetry: which GPUs exist, what one GPU
// reported over a time window, and how much is stored. It owns the paging rules.
package query

import (
	"context"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// Paging limits for sample queries.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Service answers queries from a Reader.
type Service struct {
	r ports.Reader
}

// New returns a query service.
func New(r ports.Reader) *Service { return &Service{r: r} }

// GPUs lists every known GPU.
func (s *Service) GPUs(ctx context.Context) ([]telemetry.GPU, error) {
	return s.r.GPUs(ctx)
}

// Samples returns one GPU's samples in a time window, ordered by time. It refuses a query
// whose window ends before it starts or whose page is out of bounds (limit 1…MaxLimit,
// offset ≥ 0) with an error matching telemetry.ErrInvalid, and an unknown GPU with one
// matching telemetry.ErrNotFound.
func (s *Service) Samples(ctx context.Context, q telemetry.SampleQuery) ([]telemetry.Sample, error) {
	if err := Validate(q); err != nil {
		return nil, err
	}
	return s.r.Samples(ctx, q)
}

// Validate checks a sample query against the paging and window rules.
func Validate(q telemetry.SampleQuery) error {
	switch {
	case q.GPU == "":
		return telemetry.Invalid("uuid", "is empty")
	case q.Page.Limit < 1 || q.Page.Limit > MaxLimit:
		return telemetry.Invalid("limit", "must be between 1 and %d, got %d", MaxLimit, q.Page.Limit)
	case q.Page.Offset < 0:
		return telemetry.Invalid("offset", "must not be negative, got %d", q.Page.Offset)
	case !q.Range.Start.IsZero() && !q.Range.End.IsZero() && q.Range.End.Before(q.Range.Start):
		return telemetry.Invalid("end_time", "is before start_time")
	}
	return nil
}

// Stats counts what is stored.
func (s *Service) Stats(ctx context.Context) (telemetry.Stats, error) {
	return s.r.Stats(ctx)
}
