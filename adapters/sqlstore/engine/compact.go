package engine

import "math"

// Compaction plans, for one device at a time, what becomes of its head chunks:
//
//   - once the fleet's newest point is SealAfter past the end of the window a device's
//     oldest head chunk starts in, every chunk overlapping that window — head chunks, and a
//     block written before late points arrived — is read and re-cut by Seal: the window's
//     points into blocks, any others back into head chunks;
//   - while the window is open, small head chunks (a write's worth) are merged by Merge
//     into unsealed blocks once they hold MergeMinSamples or number MergeMinChunks, so
//     that a read of recent data takes a few rows and decodes only the series it asks for.
//
// Samples never change: compaction moves them from rows to rows in one transaction, and
// drops repeats on the way.
const (
	// SealAfter is how long past a window's end points may still be on their way before it
	// is sealed. Later ones are not lost: they reopen the block.
	SealAfter = HeadSpan
	// MergeMinSamples is how many samples a device's small head chunks must hold before they
	// are merged: enough to fill a few chunks, since each merge also rewrites the last,
	// partial one. (At one chunk's worth, compaction cost split mode a fifth of its write
	// speed.)
	MergeMinSamples = 4 * HeadMaxSamples
	// BlockMaxSamples bounds a block, so that a page never decodes much more than it needs: a
	// window holding more (a device scraped every second) gets several.
	BlockMaxSamples = 16384
	// MergeMaxSamples bounds a block Merge cuts from a window still open: a few head chunks'
	// worth, so that a page of recent data decodes about what it returns, as it did of head
	// chunks (at BlockMaxSamples, window queries on a burst's merged tables took twice as
	// long), while a read of one metric still skips the others.
	MergeMaxSamples = 8 * HeadMaxSamples
	// MergeMinChunks is how many small head chunks a device gathers before they are merged
	// whatever their samples: one a write brings a scrape or two of at a time (remote_write)
	// would otherwise gather dozens before MergeMinSamples, and a read of its last hour take
	// as many rows. Such a merge takes the device's unsealed block that is not full along,
	// so that the open window's blocks stay few and full.
	MergeMinChunks = 8
)

// BlockFormat is the first byte of a block's data, telling it from a head chunk.
const BlockFormat = blockVersion

// Window is a span of BlockSpan, [Start, End) in Unix microseconds.
type Window struct{ Start, End int64 }

// WindowOf returns the window holding ts.
func WindowOf(ts int64) Window {
	span := BlockSpan.Microseconds()
	start := floorDiv(ts, span) * span
	return Window{start, start + span}
}

// Holds reports whether ts is in the window.
func (w Window) Holds(ts int64) bool { return ts >= w.Start && ts < w.End }

// Head is what the store knows of a device's head chunks without reading them.
type Head struct {
	MinTS, MaxTS int64 // over all of them
	Small        int   // chunks of fewer than HeadMaxSamples samples
	SmallSamples int   // samples in those
}

// Action is what compaction does to a device next.
type Action int

const (
	Wait      Action = iota // nothing yet
	MergeHead               // merge its small head chunks (Cut their points)
	SealBlock               // Seal the window returned
)

// Plan decides what to do with a device's head chunks, newest being the newest point time
// of any device: a device that stops reporting has its last window sealed all the same.
// force seals a window still open, as a benchmark or a shutdown wants.
func Plan(h Head, newest int64, force bool) (Action, Window) {
	w := WindowOf(h.MinTS)
	if force || w.End+SealAfter.Microseconds() <= newest {
		return SealBlock, w
	}
	if h.Small >= 2 && (h.SmallSamples >= MergeMinSamples || h.Small >= MergeMinChunks) {
		return MergeHead, Window{}
	}
	return Wait, Window{}
}

// Merge re-cuts the points of a device's small head chunks into unsealed blocks within the
// windows they fall in, MergeMaxSamples at most each. It keeps one point of each time and
// metric, the earliest in pts, and returns how many it dropped. Sealing the window later
// reads the blocks again with whatever came after them.
func Merge(device int32, pts []Point) (chunks []Chunk, repeats int) {
	pts, repeats = sortUnique(pts)
	for len(pts) > 0 {
		w, n := WindowOf(pts[0].TS), 1
		for n < len(pts) && n < MergeMaxSamples && w.Holds(pts[n].TS) {
			n++
		}
		chunks = append(chunks, Chunk{Device: device, MinTS: pts[0].TS, MaxTS: pts[n-1].TS, Samples: n, Data: encodeBlock(pts[:n])})
		pts = pts[n:]
	}
	return chunks, repeats
}

// Seal re-cuts the points of every chunk of a device overlapping w: those in the window into
// sealed blocks, the others into head chunks. It keeps one point of each time and metric,
// the earliest in pts, and returns how many it dropped, and the window's buckets of the
// finest tier (rollup.go).
func Seal(device int32, w Window, pts []Point) (chunks []Chunk, buckets []Bucket, repeats int) {
	pts, repeats = sortUnique(pts)
	var outside []Point
	i := 0
	for i < len(pts) && pts[i].TS < w.Start {
		i++
	}
	outside = append(outside, pts[:i]...)
	j := i
	for j < len(pts) && pts[j].TS < w.End {
		j++
	}
	outside = append(outside, pts[j:]...)
	buckets = Rollup(pts[i:j], Tiers[0].Step)
	for in := pts[i:j]; len(in) > 0; {
		n := min(len(in), BlockMaxSamples)
		chunks = append(chunks, Chunk{Device: device, MinTS: in[0].TS, MaxTS: in[n-1].TS, Samples: n,
			Data: encodeBlock(in[:n]), Sealed: true})
		in = in[n:]
	}
	chunks, _ = Cut(device, outside, chunks)
	return chunks, buckets, repeats
}

// FoldBefore returns the time before which the ledger of batches written is folded into a
// row per window: a batch is looked up by its ID only to recognise it when it is sent again,
// which happens within minutes (a sender retrying) — later, keeping each sample once falls
// to the points themselves. Windows fold once they may be sealed; with force, all do.
func FoldBefore(newest int64, force bool) int64 {
	if force {
		return math.MaxInt64
	}
	return WindowOf(newest - SealAfter.Microseconds()).Start
}

// floorDiv divides rounding towards minus infinity, so that windows before 1970 align too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
