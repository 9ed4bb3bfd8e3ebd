// Package query answers questions about stored telemetry: which GPUs and hosts exist, what a
// GPU reported over a time window (paged, filtered, aggregated or streamed whole), its latest
// readings, and how much is stored. It owns the rules of valid queries.
package query

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// Query limits.
const (
	DefaultLimit = 100   // samples per page unless asked otherwise
	MaxLimit     = 1000  // samples per page at most
	MaxBuckets   = 10000 // aggregated values per answer at most
	MinStep      = time.Second

	DefaultListLimit = 1000 // GPUs or hosts per page unless asked otherwise
	MaxListLimit     = 1000 // GPUs or hosts per page at most, as samples

	// MaxFleetLimit is the most GPUs a page of the fleet's latest values holds, and its
	// default: a heatmap of 10,000 GPUs reads ~300,000 samples and sends ~3 MB.
	MaxFleetLimit = 10000
)

// Service answers queries from the store.
type Service struct {
	inv    ports.Inventory
	smp    ports.SampleReader
	series ports.SeriesReader
	sum    ports.Summarizer
	tiers  ports.SummaryReader // nil: the samples answer everything
}

// New returns a query service.
func New(inv ports.Inventory, smp ports.SampleReader, series ports.SeriesReader, sum ports.Summarizer) *Service {
	return &Service{inv: inv, smp: smp, series: series, sum: sum}
}

// WithTiers has questions over long windows read the store's downsampled tiers where they
// answer exactly (Aggregate), rather than every sample.
func (s *Service) WithTiers(tiers ports.SummaryReader) *Service {
	s.tiers = tiers
	return s
}

// GPUs lists a page of the GPUs matching f, each with its MIG instances under it: limit
// GPUs at most after the position cursor (from an earlier page; "" for the first) marks.
// next is the cursor of the page after, "" when no GPU follows. A bad limit or cursor
// matches telemetry.ErrInvalid.
func (s *Service) GPUs(ctx context.Context, f telemetry.GPUFilter, limit int, cursor string) (gpus []telemetry.GPUInfo, next string, err error) {
	if err := checkListLimit(limit); err != nil {
		return nil, "", err
	}
	if cursor != "" {
		var at telemetry.GPUPosition
		if err := DecodeListCursor(cursor, "g", &at); err != nil {
			return nil, "", err
		}
		f.After = &at
	}
	f.Limit = limit + 1 // one more tells whether a page follows
	devices, err := s.inv.GPUs(ctx, f)
	if err != nil {
		return nil, "", err
	}
	gpus = groupInstances(devices)
	if len(gpus) > limit {
		gpus = gpus[:limit]
		last := gpus[limit-1]
		next = EncodeListCursor("g", telemetry.GPUPosition{Hostname: last.Hostname, Index: last.Index, UUID: last.UUID})
	}
	return gpus, next, nil
}

// Hosts lists a page of hosts, as GPUs does.
func (s *Service) Hosts(ctx context.Context, limit int, cursor string) (hosts []telemetry.Host, next string, err error) {
	if err := checkListLimit(limit); err != nil {
		return nil, "", err
	}
	f := telemetry.HostFilter{Limit: limit + 1}
	if cursor != "" {
		if err := DecodeListCursor(cursor, "h", &f.After); err != nil {
			return nil, "", err
		}
	}
	if hosts, err = s.inv.Hosts(ctx, f); err != nil {
		return nil, "", err
	}
	if len(hosts) > limit {
		hosts = hosts[:limit]
		next = EncodeListCursor("h", hosts[limit-1].Hostname)
	}
	return hosts, next, nil
}

func checkListLimit(limit int) error {
	if limit < 1 || limit > MaxListLimit {
		return telemetry.Invalid("limit", "must be between 1 and %d, got %d", MaxListLimit, limit)
	}
	return nil
}

// EncodeListCursor makes a listing's cursor: its kind and the position of the last item
// sent, in JSON, in URL-safe base64: opaque to clients, but a key of the listing's order
// rather than an offset, so that items arriving meanwhile shift nothing.
func EncodeListCursor(kind string, at any) string {
	raw, _ := json.Marshal(at) // positions are plain strings and numbers
	return base64.RawURLEncoding.EncodeToString(append([]byte(kind+"1:"), raw...))
}

// DecodeListCursor reads a cursor EncodeListCursor made for kind into into; any other
// matches telemetry.ErrInvalid.
func DecodeListCursor(cursor, kind string, into any) error {
	bad := telemetry.Invalid("cursor", "%q is not a cursor of this listing", cursor)
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return bad
	}
	body, ok := strings.CutPrefix(string(raw), kind+"1:")
	if !ok {
		return bad
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(into) != nil {
		return bad
	}
	return nil
}

// GPU returns one GPU with its MIG instances, or an error matching telemetry.ErrNotFound.
func (s *Service) GPU(ctx context.Context, key string) (telemetry.GPUInfo, error) {
	uuid, instance := telemetry.SplitDeviceKey(key)
	devices, err := s.inv.GPUs(ctx, telemetry.GPUFilter{UUID: uuid})
	if err != nil {
		return telemetry.GPUInfo{}, err
	}
	gpus := groupInstances(devices)
	if len(gpus) == 0 {
		return telemetry.GPUInfo{}, notFound(uuid)
	}
	if instance == "" {
		return gpus[0], nil
	}
	for _, inst := range gpus[0].Instances {
		if inst.Instance == instance {
			return inst, nil
		}
	}
	return telemetry.GPUInfo{}, fmt.Errorf("GPU %s has no MIG instance %s: %w", uuid, instance, telemetry.ErrNotFound)
}

// groupInstances puts each MIG instance under its GPU, in the order Inventory.GPUs lists
// devices (a GPU's instances follow it). A GPU that reported only through its instances,
// as a MIG-partitioned GPU does, is listed with its instances' metadata and time span.
func groupInstances(devices []telemetry.GPUInfo) []telemetry.GPUInfo {
	gpus := make([]telemetry.GPUInfo, 0, len(devices))
	index := map[string]int{}
	for _, d := range devices {
		i, ok := index[d.UUID]
		if d.Instance == "" {
			if ok { // its instances came first: keep them
				d.Instances = gpus[i].Instances
				gpus[i] = d
				continue
			}
			index[d.UUID] = len(gpus)
			gpus = append(gpus, d)
			continue
		}
		if !ok {
			parent := telemetry.GPUInfo{GPU: d.GPU, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen, OnlyInstances: true}
			parent.Instance, parent.InstanceProfile, parent.Instances = "", "", nil
			index[d.UUID], i = len(gpus), len(gpus)
			gpus = append(gpus, parent)
		}
		p := &gpus[i]
		p.Instances = append(p.Instances, d)
		p.FirstSeen, p.LastSeen = earliest(p.FirstSeen, d.FirstSeen), latest(p.LastSeen, d.LastSeen)
	}
	return gpus
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func notFound(uuid string) error {
	return &notFoundError{uuid: uuid}
}

type notFoundError struct{ uuid string }

func (e *notFoundError) Error() string        { return "GPU " + e.uuid + ": not found" }
func (e *notFoundError) Is(target error) bool { return target == telemetry.ErrNotFound }

// Metrics lists the metrics stored, with units and descriptions where known.
func (s *Service) Metrics(ctx context.Context) ([]telemetry.MetricInfo, error) {
	names, err := s.inv.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]telemetry.MetricInfo, len(names))
	for i, n := range names {
		out[i] = telemetry.DescribeMetric(n)
	}
	return out, nil
}

// Samples calls fn with a page of one GPU's samples, in order, and returns the cursor of
// the page after, "" when no sample follows. Errors match telemetry.ErrInvalid for a query
// that breaks the rules (see Validate) and telemetry.ErrNotFound for an unknown GPU; fn's
// own error ends the page and is returned.
func (s *Service) Samples(ctx context.Context, q telemetry.SampleQuery, fn func(telemetry.Sample) error) (next string, err error) {
	if err := Validate(q); err != nil {
		return "", err
	}
	return s.smp.Samples(ctx, q, fn)
}

// EachSample streams every sample of the window to fn, in order, ignoring q.Page.
func (s *Service) EachSample(ctx context.Context, q telemetry.SampleQuery, fn func(telemetry.Sample) error) error {
	q.Page = telemetry.Page{}
	if err := validateWindow(q); err != nil {
		return err
	}
	_, err := s.smp.Samples(ctx, q, fn)
	return err
}

// Latest returns the latest sample of every metric of a device; of a whole GPU with MIG
// instances, those of its instances too, each sample naming its device.
func (s *Service) Latest(ctx context.Context, uuid string) ([]telemetry.Sample, error) {
	gpu, instance := telemetry.SplitDeviceKey(uuid)
	if instance != "" {
		return s.smp.Latest(ctx, uuid)
	}
	// A MIG-partitioned GPU answers with its instances' values too: its exporter may report
	// nothing of the whole GPU.
	devices, err := s.inv.GPUs(ctx, telemetry.GPUFilter{UUID: gpu, NoSpan: true})
	if err != nil {
		return nil, err
	}
	if len(devices) <= 1 {
		return s.smp.Latest(ctx, uuid)
	}
	var out []telemetry.Sample
	for _, d := range devices {
		samples, err := s.smp.Latest(ctx, d.Key())
		if err != nil && !errors.Is(err, telemetry.ErrNotFound) {
			return nil, err
		}
		out = append(out, samples...)
	}
	return out, nil
}

// Validate checks a sample query against the paging and window rules.
func Validate(q telemetry.SampleQuery) error {
	switch {
	case q.Page.Limit < 1 || q.Page.Limit > MaxLimit:
		return telemetry.Invalid("limit", "must be between 1 and %d, got %d", MaxLimit, q.Page.Limit)
	case q.Page.Offset < 0:
		return telemetry.Invalid("offset", "must not be negative, got %d", q.Page.Offset)
	case q.Page.Offset > 0 && q.Page.Cursor != "":
		return telemetry.Invalid("offset", "cannot be combined with cursor")
	}
	return validateWindow(q)
}

// validateWindow checks what a sample query asks for, paging aside.
func validateWindow(q telemetry.SampleQuery) error {
	if q.GPU == "" {
		return telemetry.Invalid("uuid", "is empty")
	}
	return validateRange(q.Range)
}

func validateRange(r telemetry.TimeRange) error {
	if !r.Start.IsZero() && !r.End.IsZero() && r.End.Before(r.Start) {
		return telemetry.Invalid("end_time", "is before start_time")
	}
	return nil
}

// Stats counts what is stored.
func (s *Service) Stats(ctx context.Context) (telemetry.Stats, error) {
	return s.sum.Stats(ctx)
}
