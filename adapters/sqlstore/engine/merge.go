package engine

import "slices"

// Merger merges the points of the chunks a reader fetches, which may overlap in time (two
// writes, a late one, a block and the points that came after it was sealed), into one
// stream in order, ascending or descending. It holds the points read but not yet final.
//
// Ascending, chunks must be added by start time: once a chunk starting at t is added, every
// point before t is final, because no chunk still unread starts earlier. Descending is the
// mirror image, by end time.
type Merger struct {
	Desc    bool
	pending []Point
	scratch []Point
}

// precedes reports whether a comes before b in the output.
func (m *Merger) precedes(a, b *Point) bool {
	if m.Desc {
		return Before(b, a)
	}
	return Before(a, b)
}

// EmitRunBefore emits the pending points that come before a chunk bounded by bound —
// earlier than its start ascending, later than its end descending — as one slice, which
// emit must not keep.
func (m *Merger) EmitRunBefore(bound int64, emit func([]Point) error) error {
	i := 0
	for ; i < len(m.pending); i++ {
		ts := m.pending[i].TS
		if (!m.Desc && ts >= bound) || (m.Desc && ts <= bound) {
			break
		}
	}
	if i == 0 {
		return nil
	}
	if err := emit(m.pending[:i]); err != nil {
		return err
	}
	m.pending = m.pending[:copy(m.pending, m.pending[i:])]
	return nil
}

// EmitRunAll emits every pending point as one slice, which emit must not keep.
func (m *Merger) EmitRunAll(emit func([]Point) error) error {
	if len(m.pending) == 0 {
		return nil
	}
	err := emit(m.pending)
	m.pending = m.pending[:0]
	return err
}

// Reset drops the pending points.
func (m *Merger) Reset() { m.pending = m.pending[:0] }

// Take is Add of a run the merger may keep rather than copy; it returns a slice to decode
// the next chunk into.
func (m *Merger) Take(run []Point) []Point {
	if len(m.pending) > 0 || !unique(run) {
		m.Add(run)
		return run[:0]
	}
	if m.Desc {
		slices.Reverse(run)
	}
	spare := m.pending[:0]
	m.pending = run
	return spare
}

// unique reports whether no two points of a sorted run are the same sample, as in every
// chunk the engine cuts.
func unique(run []Point) bool {
	for i := 1; i < len(run); i++ {
		if Same(&run[i], &run[i-1]) {
			return false
		}
	}
	return true
}

// Add merges a chunk's points, ascending as Decode returns them, into the pending ones. It
// reverses run when descending. A point of the same metric, time and workload as one pending, or as
// the one before it in the chunk, is dropped: writes keep each sample once, and this holds
// it for two writes that raced with the same samples (the one read first stays).
func (m *Merger) Add(run []Point) {
	if m.Desc {
		for i, j := 0, len(run)-1; i < j; i, j = i+1, j-1 {
			run[i], run[j] = run[j], run[i]
		}
	}
	if len(run) == 0 {
		return
	}
	if n := len(m.pending); n == 0 || m.precedes(&m.pending[n-1], &run[0]) {
		// The common case, chunks that do not overlap: the run follows what is pending.
		for i := range run {
			if n := len(m.pending); n > 0 && Same(&m.pending[n-1], &run[i]) {
				continue
			}
			m.pending = append(m.pending, run[i])
		}
		return
	}
	out := m.scratch[:0]
	last := -1 // index in out of the last point appended from pending or run
	push := func(p Point) {
		if last >= 0 && Same(&out[last], &p) {
			return
		}
		out = append(out, p)
		last = len(out) - 1
	}
	i, j := 0, 0
	for i < len(m.pending) && j < len(run) {
		if m.precedes(&run[j], &m.pending[i]) {
			push(run[j])
			j++
		} else {
			push(m.pending[i]) // on a tie the pending point goes first, and stays
			i++
		}
	}
	for ; i < len(m.pending); i++ {
		push(m.pending[i])
	}
	for ; j < len(run); j++ {
		push(run[j])
	}
	m.pending, m.scratch = out, m.pending
}
