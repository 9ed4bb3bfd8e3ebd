package engine

// Acc reduces one metric's points in one bucket.
type Acc struct {
	Count         int64
	Sum, Min, Max float64
	LastTS        int64
	Last          float64
}

// Add adds a point.
func (a *Acc) Add(ts int64, v float64) {
	if a.Count == 0 {
		a.Min, a.Max, a.LastTS, a.Last = v, v, ts, v
	}
	a.Count++
	a.Sum += v
	a.Min, a.Max = min(a.Min, v), max(a.Max, v)
	if ts >= a.LastTS {
		a.LastTS, a.Last = ts, v
	}
}

// Buckets reduces points coming in time order, as a scan gives them, to one Acc per metric
// per bucket of Step, buckets aligned to the Unix epoch. A bucket is done when the first
// point after it comes: memory holds one, whatever the window.
type Buckets struct {
	Step int64 // µs

	open       bool
	start, end int64   // of the open bucket
	accs       []Acc   // slot → its accumulator in the open bucket
	metrics    []int32 // slot → metric id, slots in the order metrics were first seen
	slotOf     []int32 // metric id → 1 + its slot, 0 for one not seen yet
}

// Done receives a bucket: its start, and the metrics seen so far with their accumulators
// in it (Count 0 for the metrics without points there), both valid until it returns.
type Done func(start int64, metrics []int32, accs []Acc) error

// Add reduces a run of points, later than any added before, calling done with each bucket
// the run completes.
func (b *Buckets) Add(run []Point, done Done) error {
	for i := range run {
		p := &run[i]
		if !b.open || p.TS >= b.end {
			if err := b.Close(done); err != nil {
				return err
			}
			b.open, b.start = true, floorDiv(p.TS, b.Step)*b.Step
			b.end = b.start + b.Step
		}
		if id := p.Metric; id >= 0 && int(id) < len(b.slotOf) && b.slotOf[id] > 0 {
			b.accs[b.slotOf[id]-1].Add(p.TS, p.Value) // the common case, inline
			continue
		}
		b.accs[b.slot(p.Metric)].Add(p.TS, p.Value)
	}
	return nil
}

// Close completes the open bucket, if any.
func (b *Buckets) Close(done Done) error {
	if !b.open {
		return nil
	}
	b.open = false
	err := done(b.start, b.metrics, b.accs)
	clear(b.accs)
	return err
}

func (b *Buckets) slot(metric int32) int {
	b.metrics = append(b.metrics, metric)
	b.accs = append(b.accs, Acc{})
	slot := len(b.metrics) - 1
	if metric >= 0 {
		if int(metric) >= len(b.slotOf) {
			b.slotOf = append(b.slotOf, make([]int32, int(metric)+1-len(b.slotOf))...)
		}
		b.slotOf[metric] = int32(slot + 1)
	}
	return slot
}

// floorDiv divides rounding towards minus infinity, so that buckets before 1970 align too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
