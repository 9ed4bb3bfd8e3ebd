package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Samples implements ports.SampleReader.
func (s *Store) Samples(ctx context.Context, q telemetry.SampleQuery, fn func(telemetry.Sample) error) (next string, err error) {
	gpuID, err := s.gpuID(ctx, q.GPU)
	if err != nil {
		return "", err
	}
	keep, found, err := s.metricFilter(ctx, q.Metrics)
	if err != nil || !found {
		return "", err
	}
	req := scanRequest{gpu: gpuID, window: windowOf(q.Range), desc: q.Desc, keep: keep}
	if q.Page.Limit > 0 {
		req.want = q.Page.Offset + q.Page.Limit + 1 // one more tells whether a page follows
	}
	if q.Page.Cursor != "" {
		c, err := engine.DecodeCursor(q.Page.Cursor)
		if err != nil {
			return "", telemetry.Invalid("cursor", "%q is not a cursor this API returned", q.Page.Cursor)
		}
		req = req.after(c.Point())
	}
	var (
		conv = s.converter(q.GPU)
		skip = q.Page.Offset
		sent int
		last engine.Point // sent
	)
	err = s.scan(ctx, req, func(p engine.Point) error {
		if skip > 0 {
			skip--
			return nil
		}
		if q.Page.Limit > 0 && sent == q.Page.Limit {
			next = engine.Cursor{TS: last.TS, Metric: last.Metric, Work: last.Work}.Encode()
			return errStop
		}
		smp, err := conv.sample(ctx, p)
		if err != nil {
			return err
		}
		sent, last = sent+1, p
		return fn(*smp)
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return next, err
}

// errStop ends a scan once a page is full.
var errStop = errors.New("stop")

// converter turns one GPU's points into samples.
type converter struct {
	s     *Store
	smp   telemetry.Sample // the last one made, its GPU set once
	names []string         // by metric id: the store's cache takes a lock, this one is the caller's
}

func (s *Store) converter(uuid string) *converter {
	return &converter{s: s, smp: telemetry.Sample{GPU: uuid}}
}

// sample returns p as a sample, valid until the next call: a page converts a thousand, and
// filling one in place costs a fraction of returning each by value.
func (c *converter) sample(ctx context.Context, p engine.Point) (*telemetry.Sample, error) {
	var name string
	if p.Metric >= 0 && int(p.Metric) < len(c.names) {
		name = c.names[p.Metric]
	}
	if name == "" {
		var err error
		if name, err = c.s.metricName(ctx, p.Metric); err != nil {
			return nil, err
		}
		if p.Metric >= 0 && p.Metric < 1<<16 { // ids are small; a stray one just misses the cache
			if int(p.Metric) >= len(c.names) {
				c.names = append(c.names, make([]string, int(p.Metric)+1-len(c.names))...)
			}
			c.names[p.Metric] = name
		}
	}
	smp := &c.smp
	smp.Metric, smp.Time, smp.Value = name, time.UnixMicro(p.TS).UTC(), p.Value
	smp.Container, smp.Pod, smp.Namespace = "", "", ""
	if p.Work != nil {
		smp.Container, smp.Pod, smp.Namespace = p.Work.Container, p.Work.Pod, p.Work.Namespace
	}
	return smp, nil
}

// metricFilter returns a filter keeping the named metrics, nil (every point) when names is
// empty; found is false when none of the names was ever stored.
func (s *Store) metricFilter(ctx context.Context, names []string) (keep func(*engine.Point) bool, found bool, err error) {
	set, err := s.storedMetrics(ctx, names)
	if err != nil || set == nil {
		return nil, len(names) == 0 && err == nil, err
	}
	return func(p *engine.Point) bool { return set[p.Metric] }, true, nil
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func toAny[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// Latest implements ports.SampleReader: it reads the GPU's chunks newest first until it has
// seen every metric the GPU's row lists (metric_ids).
func (s *Store) Latest(ctx context.Context, uuid string) ([]telemetry.Sample, error) {
	gpuID, err := s.gpuID(ctx, uuid)
	if err != nil {
		return nil, err
	}
	var want int64
	count := `SELECT cardinality(metric_ids) FROM gpus WHERE id = ?`
	if s.dialect.name == "sqlite" {
		count = `SELECT json_array_length(metric_ids) FROM gpus WHERE id = ?`
	}
	if err := s.db.WithContext(ctx).Raw(count, gpuID).Row().Scan(&want); err != nil {
		return nil, classify(fmt.Errorf("latest samples: %w", err))
	}
	out := []telemetry.Sample{}
	seen := map[int32]bool{}
	conv := s.converter(uuid)
	err = s.scan(ctx, scanRequest{gpu: gpuID, desc: true, want: int(want)}, func(p engine.Point) error {
		if seen[p.Metric] {
			return nil
		}
		seen[p.Metric] = true
		smp, err := conv.sample(ctx, p)
		if err != nil {
			return err
		}
		out = append(out, *smp)
		if int64(len(out)) >= want {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	slices.SortFunc(out, func(a, b telemetry.Sample) int { return strings.Compare(a.Metric, b.Metric) })
	return out, nil
}

// Stats implements ports.Summarizer from the batches table — one row per batch, not per
// sample — and the gpus table.
func (s *Store) Stats(ctx context.Context) (telemetry.Stats, error) {
	var st telemetry.Stats
	var oldest, newest timestamp
	db := s.db.WithContext(ctx)
	// Batches count what was stored; retention's tally says how far they and the chunks
	// left apart when it deleted them.
	err := db.Raw(`SELECT coalesce(sum(samples), 0) - (SELECT chunk_samples - batch_samples FROM pruned),
		min(min_ts), max(max_ts) FROM batches`).Row().Scan(&st.TotalSamples, &oldest, &newest)
	if err != nil {
		return st, classify(fmt.Errorf("count samples: %w", err))
	}
	st.Oldest, st.Newest = oldest.Time, newest.Time
	err = db.Raw(`SELECT count(DISTINCT uuid), count(DISTINCT hostname) FROM gpus WHERE id_from <> '`+telemetry.IDFromTarget+`'`).Row().Scan(&st.UniqueGPUs, &st.UniqueHosts)
	if err != nil {
		return st, classify(fmt.Errorf("count GPUs: %w", err))
	}
	return st, nil
}

// timestamp scans the ts column of either dialect — timestamptz on PostgreSQL, Unix
// microseconds on SQLite — and NULL as the zero time.
type timestamp struct{ time.Time }

func (t *timestamp) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		t.Time = time.Time{}
	case time.Time:
		t.Time = v.UTC()
	case int64:
		t.Time = time.UnixMicro(v).UTC()
	case float64: // SQLite arithmetic on integers can come back as REAL
		t.Time = time.UnixMicro(int64(v)).UTC()
	default:
		return fmt.Errorf("ts: unexpected %T", src)
	}
	return nil
}
