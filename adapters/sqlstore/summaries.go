package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Reads of the downsampled tiers (ports.SummaryReader). A device's two-hour windows are
// answered from the tier when it holds them whole — sealed, in their day's 5-minute row,
// and no head chunk since (points that came late) — and from the samples otherwise: the
// window still open, a window sealed before the tiers existed, and a window whose buckets
// the range cuts. Of the hourly tier, a day with such a window, or not written into it yet
// (a day is, once it is over), is answered from its 5-minute buckets and the samples,
// coarsened. So the answer is the samples' wherever they are
// kept, and the tier's where they are not.

// SummarySteps are the steps of the tiers, finest first.
func (s *Store) SummarySteps() []time.Duration {
	steps := make([]time.Duration, len(engine.Tiers))
	for i, t := range engine.Tiers {
		steps[i] = t.Step
	}
	return steps
}

// DeletedBefore implements ports.SummaryReader: the cutoff retention last deleted samples
// at (samples before it may be gone; from it on, all are kept), or for a store pruned before
// that was kept, the batches ledger's oldest span — a small table, folded to a row a window
// — and now once every sample is gone.
func (s *Store) DeletedBefore(ctx context.Context) (time.Time, error) {
	var deleted int64
	var cutoff, oldest timestamp
	if err := s.sqlDB.QueryRowContext(ctx, `SELECT batch_samples, samples_before, (SELECT min(min_ts) FROM batches) FROM pruned`).Scan(&deleted, &cutoff, &oldest); err != nil {
		return time.Time{}, classify(fmt.Errorf("find the oldest sample: %w", err))
	}
	switch {
	case !cutoff.IsZero():
		return cutoff.Time, nil
	case deleted == 0:
		return time.Time{}, nil
	case oldest.IsZero():
		return s.clock(ctx, s.sqlDB)
	}
	return oldest.Time, nil
}

// summaryGroup is how many devices one query of Summaries reads: a fleet-wide panel of 247
// GPUs took 5 queries a device when each was read alone.
const summaryGroup = 500

// Summaries implements ports.SummaryReader.
func (s *Store) Summaries(ctx context.Context, q telemetry.SummaryQuery, fn func(telemetry.SummarySeries) error) error {
	tier := slices.IndexFunc(engine.Tiers, func(t engine.Tier) bool { return t.Step == q.Step })
	switch {
	case tier < 0:
		return telemetry.Invalid("step", "%s is not the step of a tier (%v)", q.Step, s.SummarySteps())
	case q.Range.Start.IsZero() || q.Range.End.IsZero():
		return telemetry.Invalid("range", "a summary needs both ends of its window")
	}
	var keep map[int32]bool
	if len(q.Metrics) > 0 {
		set, err := s.storedMetrics(ctx, q.Metrics)
		if err != nil || set == nil {
			return err
		}
		keep = set
	}
	found, err := s.lookupGPUIDs(ctx, q.GPUs)
	if err != nil {
		return err
	}
	keys := make(map[int32]string, len(found))
	var ids []int32
	for _, key := range q.GPUs {
		if id, ok := found[key]; ok && keys[id] == "" {
			keys[id] = key
			ids = append(ids, id)
		}
	}
	lo, hi := q.Range.Start.UnixMicro(), q.Range.End.UnixMicro()+1 // [lo, hi)
	for group := range slices.Chunk(ids, summaryGroup) {
		buckets, err := s.groupSummaries(ctx, tier, group, keys, q.Metrics, keep, lo, hi)
		if err != nil {
			return classify(fmt.Errorf("summaries: %w", err))
		}
		for _, id := range group {
			if err := s.emitSummaries(ctx, keys[id], buckets[id], keep, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// groupSummaries returns devices' buckets of tier over [lo, hi) of metrics (by name, and by
// id in keep; all when empty), by device, each in no set order. Each read is one query for
// all the devices.
func (s *Store) groupSummaries(ctx context.Context, tier int, ids []int32, keys map[int32]string, metrics []string, keep map[int32]bool,
	lo, hi int64) (map[int32][]engine.Bucket, error) {
	dirty, uncoarsened, err := s.dirtyWindows(ctx, ids, lo, hi, engine.Tiers[tier].Step.Microseconds(), tier > 0)
	if err != nil {
		return nil, err
	}
	// The finest tier's buckets of the clean windows, or, for a coarser tier, its buckets of
	// the days with no dirty window and the finest tier's of the other days' clean windows.
	var out, fine map[int32][]engine.Bucket
	if tier == 0 {
		if fine, err = s.readRollups(ctx, s.sqlDB, engine.Tiers[0], ids, lo, hi, keep); err != nil {
			return nil, err
		}
		out = map[int32][]engine.Bucket{}
	} else {
		if out, err = s.readRollups(ctx, s.sqlDB, engine.Tiers[tier], ids, lo, hi, keep); err != nil {
			return nil, err
		}
		dayOf := engine.Tiers[0].SpanOf
		days := map[int64]bool{}
		for _, ws := range dirty {
			for w := range ws {
				days[dayOf(w)] = true
			}
		}
		for _, ds := range uncoarsened {
			for day := range ds {
				days[day] = true
			}
		}
		if fine, err = s.readRollupDays(ctx, engine.Tiers[0], ids, days, lo, hi, keep); err != nil {
			return nil, err
		}
		for _, id := range ids {
			// A day with a dirty window, or not in the coarse row yet, is taken from its
			// finest row; one whose finest row retention deleted keeps its coarse buckets, but
			// those of its dirty windows (a bucket the range cuts: the answer warns of it).
			fromFine := map[int64]bool{}
			fromFineRow := func(day int64) bool { return uncoarsened[id][day] || hasWindowIn(dirty[id], day) }
			fine[id] = slices.DeleteFunc(fine[id], func(b engine.Bucket) bool {
				day := dayOf(b.Start)
				if !fromFineRow(day) { // for another device only
					return true
				}
				fromFine[day] = true
				return false
			})
			out[id] = slices.DeleteFunc(out[id], func(b engine.Bucket) bool {
				day := dayOf(b.Start)
				return fromFineRow(day) && (fromFine[day] || dirty[id][engine.WindowOf(b.Start).Start])
			})
		}
	}
	// The samples of the dirty windows, within [lo, hi): one read for the devices whose
	// dirty windows are the same (the open window of each, the window a range cuts).
	bySpans := map[string][]int32{}
	for _, id := range ids {
		fine[id] = slices.DeleteFunc(fine[id], func(b engine.Bucket) bool { return dirty[id][engine.WindowOf(b.Start).Start] })
		if spans := mergeWindows(dirty[id], lo, hi); len(spans) > 0 {
			k := fmt.Sprint(spans)
			bySpans[k] = append(bySpans[k], id)
		}
	}
	for _, group := range bySpans {
		devices := make([]string, len(group))
		for i, id := range group {
			devices[i] = keys[id]
		}
		for _, span := range mergeWindows(dirty[group[0]], lo, hi) {
			byKey, err := s.rollupSamples(ctx, devices, metrics, span, engine.Tiers[0].Step)
			if err != nil {
				return nil, err
			}
			for _, id := range group {
				fine[id] = append(fine[id], byKey[keys[id]]...)
			}
		}
	}
	for _, id := range ids {
		if tier > 0 {
			byStart(fine[id]) // a series' buckets in order, as Coarsen takes them
			fine[id] = engine.Coarsen(fine[id], engine.Tiers[tier].Step)
		}
		out[id] = append(out[id], fine[id]...)
	}
	return out, nil
}

// hasWindowIn tells whether any of windows starts in the finest tier's row starting at day.
func hasWindowIn(windows map[int64]bool, day int64) bool {
	for w := range windows {
		if engine.Tiers[0].SpanOf(w) == day {
			return true
		}
	}
	return false
}

// dirtyWindows returns, by device, the starts of the devices' windows over [lo, hi) that
// their tier does not hold whole: with a head chunk, sealed without a 5-minute row, or cut
// by the range within a bucket of step; and, when coarse, the starts of the days whose
// 5-minute row is not in the coarser tiers yet. For a coarser tier, the blocks of a day in
// it are not listed: it is written there only once every block of the day is in its
// 5-minute row (coarsenDays), so a month's question lists the blocks of a day or two, not
// of the month.
func (s *Store) dirtyWindows(ctx context.Context, ids []int32, lo, hi, step int64, coarse bool) (dirty, uncoarsened map[int32]map[int64]bool, err error) {
	dirty = make(map[int32]map[int64]bool, len(ids))
	for _, id := range ids {
		dirty[id] = map[int64]bool{}
		if lo%step != 0 {
			dirty[id][engine.WindowOf(lo).Start] = true
		}
		if hi%step != 0 {
			dirty[id][engine.WindowOf(hi-1).Start] = true
		}
	}
	sealed := map[int32]map[int64]bool{}
	note := func(id int32, minTS, maxTS int64, isSealed bool) {
		first, last := engine.WindowOf(minTS).Start, engine.WindowOf(maxTS).Start
		for w := first; w <= last; w += engine.BlockSpan.Microseconds() {
			if !isSealed {
				dirty[id][w] = true
				continue
			}
			if sealed[id] == nil {
				sealed[id] = map[int64]bool{}
			}
			sealed[id][w] = true
		}
	}
	whole := [][2]int64{{lo, hi}}
	var days map[int32]map[int64]dayRow
	if !coarse {
		if err := s.listChunks(ctx, ids, whole, "", note); err != nil {
			return nil, nil, err
		}
		if len(sealed) == 0 {
			return dirty, nil, nil
		}
		// Each sealed window needs its day's 5-minute row to hold it.
		withRows := make([]int32, 0, len(sealed))
		for id := range sealed {
			withRows = append(withRows, id)
		}
		if days, err = s.dayRows(ctx, withRows, lo, hi); err != nil {
			return nil, nil, err
		}
	} else {
		if days, err = s.dayRows(ctx, ids, lo, hi); err != nil {
			return nil, nil, err
		}
		if err := s.listChunks(ctx, ids, whole, " AND "+s.dialect.unsealed, note); err != nil {
			return nil, nil, err
		}
		bySpans := map[string][]int32{}
		for _, id := range ids {
			if spans := notCoarsened(days[id], lo, hi); len(spans) > 0 {
				k := fmt.Sprint(spans)
				bySpans[k] = append(bySpans[k], id)
			}
		}
		for _, group := range bySpans {
			if err := s.listChunks(ctx, group, notCoarsened(days[group[0]], lo, hi), " AND NOT ("+s.dialect.unsealed+")", note); err != nil {
				return nil, nil, err
			}
		}
		uncoarsened = map[int32]map[int64]bool{}
		for id, rows := range days {
			for day, r := range rows {
				if !r.coarsened {
					if uncoarsened[id] == nil {
						uncoarsened[id] = map[int64]bool{}
					}
					uncoarsened[id][day] = true
				}
			}
		}
	}
	for id, rows := range days {
		for day, r := range rows {
			for w, covered := int64(0), r.covered; covered != 0; w, covered = w+1, covered>>1 {
				if covered&1 == 1 {
					delete(sealed[id], day+w*engine.BlockSpan.Microseconds())
				}
			}
		}
	}
	for id, ws := range sealed {
		for w := range ws {
			dirty[id][w] = true
		}
	}
	return dirty, uncoarsened, nil
}

// listChunks hands fn the device, span and kind of each chunk of the devices with a point
// in any of spans ([from, to) each) that matches cond (an SQL condition after AND, or "").
func (s *Store) listChunks(ctx context.Context, ids []int32, spans [][2]int64, cond string, fn func(id int32, minTS, maxTS int64, sealed bool)) error {
	ts := func(us int64) any { return s.dialect.ts(time.UnixMicro(us)) }
	inSpans := make([]string, len(spans))
	args := toAny(ids)
	for i, sp := range spans {
		inSpans[i] = `(min_ts < ? AND min_ts >= ? AND max_ts >= ?)`
		args = append(args, ts(sp[1]), ts(sp[0]-engine.MaxSpan.Microseconds()), ts(sp[0]))
	}
	rows, err := s.sqlDB.QueryContext(ctx, s.dialect.rebind(`SELECT CAST(gpu_id AS BIGINT), min_ts, max_ts, sealed FROM chunks
		WHERE gpu_id IN (`+placeholders(len(ids))+`) AND (`+strings.Join(inSpans, " OR ")+`)`+cond), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var minTS, maxTS timestamp
		var isSealed bool
		if err := rows.Scan(&id, &minTS, &maxTS, &isSealed); err != nil {
			return err
		}
		fn(int32(id), minTS.UnixMicro(), maxTS.UnixMicro(), isSealed)
	}
	return rows.Err()
}

// dayRow is what a device's day row of the finest tier says of it: the windows it holds (a
// bit each) and whether the coarser tiers hold the day.
type dayRow struct {
	covered   int64
	coarsened bool
}

// dayRows returns the devices' day rows of the finest tier over [lo, hi), by device and day.
func (s *Store) dayRows(ctx context.Context, ids []int32, lo, hi int64) (map[int32]map[int64]dayRow, error) {
	ts := func(us int64) any { return s.dialect.ts(time.UnixMicro(us)) }
	rows, err := s.sqlDB.QueryContext(ctx, s.dialect.rebind(`SELECT CAST(gpu_id AS BIGINT), start, covered, coarsened FROM rollups
		WHERE step = ? AND gpu_id IN (`+placeholders(len(ids))+`) AND start >= ? AND start < ?`),
		append(append([]any{int(engine.Tiers[0].Step / time.Second)}, toAny(ids)...), ts(engine.Tiers[0].SpanOf(lo)), ts(hi))...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int32]map[int64]dayRow{}
	for rows.Next() {
		var id int64
		var start timestamp
		var r dayRow
		if err := rows.Scan(&id, &start, &r.covered, &r.coarsened); err != nil {
			return nil, err
		}
		if out[int32(id)] == nil {
			out[int32(id)] = map[int64]dayRow{}
		}
		out[int32(id)][start.UnixMicro()] = r
	}
	return out, rows.Err()
}

// maxListSpans bounds the spans of one listing of chunks; beyond, the one span from the
// first to the last is listed.
const maxListSpans = 16

// notCoarsened returns the spans of [lo, hi) whose days a device's rows do not say are in
// the coarser tiers, adjacent ones merged, in order.
func notCoarsened(rows map[int64]dayRow, lo, hi int64) [][2]int64 {
	fine := engine.Tiers[0]
	var out [][2]int64
	for day := fine.SpanOf(lo); day < hi; day += fine.Span.Microseconds() {
		if r, ok := rows[day]; ok && r.coarsened {
			continue
		}
		from, to := max(day, lo), min(day+fine.Span.Microseconds(), hi)
		if n := len(out); n > 0 && out[n-1][1] == from {
			out[n-1][1] = to
		} else {
			out = append(out, [2]int64{from, to})
		}
	}
	if len(out) > maxListSpans {
		out = [][2]int64{{out[0][0], out[len(out)-1][1]}}
	}
	return out
}

// mergeWindows returns the windows as spans [from, to) cut to [lo, hi), adjacent ones
// merged, in order.
func mergeWindows(windows map[int64]bool, lo, hi int64) [][2]int64 {
	starts := make([]int64, 0, len(windows))
	for w := range windows {
		starts = append(starts, w)
	}
	slices.Sort(starts)
	var out [][2]int64
	for _, w := range starts {
		from, to := max(w, lo), min(w+engine.BlockSpan.Microseconds(), hi)
		if from >= to {
			continue
		}
		if n := len(out); n > 0 && out[n-1][1] == from {
			out[n-1][1] = to
		} else {
			out = append(out, [2]int64{from, to})
		}
	}
	return out
}

// rollupSamples reads devices' samples in span and reduces them to buckets of step, by
// device key.
func (s *Store) rollupSamples(ctx context.Context, devices []string, metrics []string, span [2]int64, step time.Duration) (map[string][]engine.Bucket, error) {
	out := map[string][]engine.Bucket{}
	var pts []engine.Point
	q := telemetry.SeriesQuery{GPUs: devices, Metrics: metrics,
		Range: telemetry.TimeRange{Start: time.UnixMicro(span[0]), End: time.UnixMicro(span[1] - 1)}, Transient: true}
	err := s.Series(ctx, q, func(sr telemetry.Series) error {
		id, err := s.metricIDOf(ctx, sr.Metric)
		if err != nil {
			return err
		}
		var work *engine.Workload
		if sr.Container != "" || sr.Pod != "" || sr.Namespace != "" {
			work = &engine.Workload{Container: sr.Container, Pod: sr.Pod, Namespace: sr.Namespace}
		}
		pts = pts[:0]
		for _, p := range sr.Points {
			pts = append(pts, engine.Point{TS: p.Time, Metric: id, Value: p.Value, Work: work})
		}
		out[sr.GPU] = append(out[sr.GPU], engine.Rollup(pts, step)...)
		return nil
	})
	return out, err
}

// metricIDOf returns a stored metric's id.
func (s *Store) metricIDOf(ctx context.Context, name string) (int32, error) {
	ids, err := s.storedMetrics(ctx, []string{name})
	if err != nil {
		return 0, err
	}
	for id := range ids {
		return id, nil
	}
	return 0, fmt.Errorf("metric %s: %w", name, telemetry.ErrNotFound)
}

// byStart orders buckets by start, keeping the order of those that start together.
func byStart(bs []engine.Bucket) {
	slices.SortStableFunc(bs, func(a, b engine.Bucket) int { return cmp.Compare(a.Start, b.Start) })
}

// seriesOf names a series of a device, as a map key.
type seriesOf struct {
	metric int32
	work   engine.Workload
}

// emitSummaries hands a device's buckets to fn a series at a time, by metric id and
// workload, each series' summaries by start.
func (s *Store) emitSummaries(ctx context.Context, key string, bs []engine.Bucket, keep map[int32]bool, fn func(telemetry.SummarySeries) error) error {
	series := map[seriesOf]*telemetry.SummarySeries{}
	var keys []seriesOf
	for i := range bs {
		b := &bs[i]
		if keep != nil && !keep[b.Metric] {
			continue
		}
		k := seriesOf{metric: b.Metric}
		if b.Work != nil {
			k.work = *b.Work
		}
		sr := series[k]
		if sr == nil {
			name, err := s.metricName(ctx, b.Metric)
			if err != nil {
				return err
			}
			sr = &telemetry.SummarySeries{GPU: key, Metric: name, Container: k.work.Container, Pod: k.work.Pod, Namespace: k.work.Namespace}
			series[k] = sr
			keys = append(keys, k)
		}
		sr.Summaries = append(sr.Summaries, telemetry.Summary{Start: b.Start, Count: b.Count, Sum: b.Sum, Min: b.Min, Max: b.Max, Last: b.Last, LastAt: b.LastAt})
	}
	slices.SortFunc(keys, func(a, b seriesOf) int {
		return cmp.Or(cmp.Compare(a.metric, b.metric), engine.CompareWork(&a.work, &b.work))
	})
	for _, k := range keys {
		sr := series[k]
		if !slices.IsSortedFunc(sr.Summaries, byStartOf) {
			slices.SortFunc(sr.Summaries, byStartOf)
		}
		if err := fn(*sr); err != nil {
			return err
		}
	}
	return nil
}

func byStartOf(a, b telemetry.Summary) int { return cmp.Compare(a.Start, b.Start) }
