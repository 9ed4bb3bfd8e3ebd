// Package workload keeps a record of each workload's hold on a device — who held which GPU,
// from when to when, and how well they used it — made from the samples as they settle and
// kept after retention has deleted them.
//
// A recorder makes records in passes over consecutive intervals of the samples, each
// interval once (the store's cursor says how far records are made). A pass accounts its
// interval per device and workload exactly as a usage report of that interval does
// (package usage), and adds it to the workload's open record: since the reports of
// adjacent windows add up to the report of both, a record equals the usage report of any
// window that holds its whole hold. A record closes once its workload has reported
// nothing on the device for longer than the gap (5 minutes): by then its last sample's
// time is all counted. Samples of other workloads in between do not close it (a device
// reported by two sources, one without the pod's labels, interleaves them at every
// scrape), nor count in it. A workload seen again later opens a new record.
//
// The same passes keep what each hour's and day's samples add up to per device and
// workload (none included): the sums a usage report over a long window reads instead of
// the samples. Samples stored after their interval was recorded are found by the store,
// which moves the cursor back; the passes that redo those hours redo the sums only, so the
// records made before keep them out.
package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// Devices streams every device's series of a window, by field: query.Fleet.EachDevice.
type Devices interface {
	EachDevice(ctx context.Context, r telemetry.TimeRange, metrics []string,
		listed func([]telemetry.GPU), fn func(*telemetry.GPU, map[string][]telemetry.Series)) error
}

// Config tunes a recorder.
type Config struct {
	// Gap is the longest a sample stands for, as in usage reports (usage.DefaultGap when 0).
	Gap time.Duration
	// Settle is how far behind the newest sample stored a pass stops, so that the samples
	// of an interval, which streamers deliver in no set order, have arrived before it is
	// recorded (DefaultSettle when 0). Samples arriving later miss the records; the
	// hourly sums are redone.
	Settle time.Duration
	// Step is the longest interval one pass records (1 hour when 0): what bounds a pass's
	// memory and its transaction.
	Step time.Duration
}

// DefaultSettle is how long a pass waits for an interval's samples: scrape intervals,
// queueing and batching delay them by seconds, a collector's retries by a minute or so.
const DefaultSettle = 2 * time.Minute

// Recorder makes workload records from the samples.
type Recorder struct {
	devices Devices
	samples ports.Summarizer
	store   ports.WorkloadStore
	cfg     Config
	log     *slog.Logger

	mu    sync.Mutex
	stats Stats
	seen  []sighting // the newest sample at each pass, for the horizon
}

// sighting is the newest sample stored, as a pass found it, and when.
type sighting struct{ at, newest time.Time }

// Stats counts what a recorder did in this process.
type Stats struct {
	Passes, Failures int64
	Written, Closed  int64     // records added or replaced, and of them closed
	Through          time.Time // how far the samples were recorded at the last pass
}

// Stats returns the counts so far.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *Recorder) count(p Pass, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Passes++
	if err != nil {
		r.stats.Failures++
		return
	}
	r.stats.Written += int64(p.Updated)
	r.stats.Closed += int64(p.Closed)
	if !p.To.IsZero() {
		r.stats.Through = p.To
	}
}

// NewRecorder returns a recorder that reads devices, finds where the samples begin and end
// through stats, and keeps its records in store.
func NewRecorder(devices Devices, stats ports.Summarizer, store ports.WorkloadStore, cfg Config, log *slog.Logger) *Recorder {
	cfg.Gap = cmpOr(cfg.Gap, usage.DefaultGap)
	cfg.Settle = cmpOr(cfg.Settle, DefaultSettle)
	cfg.Step = cmpOr(cfg.Step, time.Hour)
	return &Recorder{devices: devices, samples: stats, store: store, cfg: cfg, log: log}
}

func cmpOr(d, or time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return or
}

// Pass is what one pass recorded: the interval, the records it touched and closed, and
// whether the samples hold more to record.
type Pass struct {
	From, To        time.Time
	Updated, Closed int
	More            bool
}

// errRaced means another process recorded the interval first; errBusy that another
// process is making a pass.
var (
	errRaced = errors.New("another recorder recorded the interval first")
	errBusy  = errors.New("another recorder is making a pass")
)

// Record makes one pass: the interval after the last one recorded, up to Step long, ending
// where the samples have settled (horizon). Where none have settled past the cursor, the
// pass records no time but still has the store look for samples stored late. Another
// process making a pass (errBusy), or recording the interval first (errRaced), makes this
// one record nothing.
func (r *Recorder) Record(ctx context.Context, now time.Time) (Pass, error) {
	unlock, mine, err := r.store.LockRecorder(ctx)
	if err != nil {
		return Pass{}, fmt.Errorf("take the recorder's lock: %w", err)
	}
	if !mine {
		return Pass{}, errBusy
	}
	defer unlock()
	state, open, err := r.store.OpenWorkloads(ctx)
	if err != nil {
		return Pass{}, fmt.Errorf("read open workload records: %w", err)
	}
	st, err := r.samples.Stats(ctx)
	if err != nil {
		return Pass{}, fmt.Errorf("find the newest sample: %w", err)
	}
	if st.Newest.IsZero() {
		return Pass{}, nil
	}
	from := state.Through
	if from.IsZero() {
		from = st.Oldest
	}
	horizon := r.horizon(now, st.Newest)
	to := from.Add(r.cfg.Step)
	if horizon.Before(to) {
		to = horizon
	}
	replay := from.Before(state.Replay)
	if replay && state.Replay.Before(to) {
		to = state.Replay // a replay redoes the hourly usage, not the records made since
	}
	if to.Before(from) {
		to = from // a pass of no time: it still looks for samples stored late
	}
	p := Pass{From: from, To: to, More: to.Before(horizon)}
	records, parts, err := r.pass(ctx, from, to, open)
	if err != nil {
		return Pass{}, err
	}
	if replay {
		records = nil
	}
	for _, w := range records {
		if !w.Open {
			p.Closed++
		}
	}
	p.Updated = len(records)
	through, ok, err := r.store.RecordWorkloads(ctx, state, to, records, parts)
	switch {
	case err != nil:
		return Pass{}, fmt.Errorf("store workload records: %w", err)
	case !ok:
		return Pass{}, errRaced
	case through.Before(to): // samples arrived late: their hours are redone next
		p.More = true
	}
	return p, nil
}

// horizon is how far samples have settled: Settle behind the newest sample (never after
// now, so that a sample stamped in the future settles nothing), and no later than the
// newest sample stored Settle ago by the clock. The second bound is an import's: loading a
// file at full speed, collectors store batches far apart in sample time at once, and one
// still in the queue may be minutes of sample time behind the newest; a batch more than
// Settle late by the clock is not. Before a process has watched for Settle, nothing has.
func (r *Recorder) horizon(now, newest time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, sighting{at: now, newest: newest})
	if now.Before(newest) {
		newest = now
	}
	horizon := newest.Add(-r.cfg.Settle)
	settled := time.Time{} // the newest seen Settle ago
	keep := 0
	for i, s := range r.seen {
		if now.Sub(s.at) >= r.cfg.Settle {
			settled, keep = s.newest, i
		}
	}
	r.seen = r.seen[keep:] // the last one old enough stays, for the next pass
	if settled.Before(horizon) {
		horizon = settled
	}
	return horizon
}

// holder is a workload on a device.
type holder struct{ device, namespace, pod, container string }

func holderOf(device string, s telemetry.Series) holder {
	return holder{device, s.Namespace, s.Pod, s.Container}
}

func (h holder) name() string { return h.namespace + "\x00" + h.pod + "\x00" + h.container }

// pass accounts [from, to) and returns the records it changes — open ones it adds to or
// closes, and new ones — and the usage parts of each hour it covers.
func (r *Recorder) pass(ctx context.Context, from, to time.Time, open []telemetry.Workload) ([]telemetry.Workload, []telemetry.UsagePart, error) {
	// Read a gap before, for the samples standing at from and the holds they continue, and a
	// gap after, for the sample that ends the time of the last one before to.
	read := telemetry.TimeRange{Start: from.Add(-r.cfg.Gap), End: to.Add(r.cfg.Gap)}
	records := make(map[holder]*telemetry.Workload, len(open))
	for i := range open {
		w := &open[i]
		records[holder{w.GPU.Key(), w.Namespace, w.Pod, w.Container}] = w
	}
	changed := map[holder]bool{}
	var out []telemetry.Workload
	var parts []telemetry.UsagePart
	var shares map[string]float64
	metrics := slices.Concat(usage.Fields, usage.EfficiencyFields, health.Fields(nil))
	err := r.devices.EachDevice(ctx, read, metrics,
		func(devices []telemetry.GPU) { shares = usage.Shares(devices) },
		func(device *telemetry.GPU, fields map[string][]telemetry.Series) {
			d := usage.Device{Key: device.Key(), Share: shares[device.Key()], Model: device.ModelName}
			if d.Share <= 0 {
				return
			}
			signal, util, _ := usage.Utilisation(fields)
			parts = append(parts, r.hourParts(d, device, signal, fields, from, to)...)
			holds := r.holds(d.Key, util, from, to)
			for _, h := range holds {
				t, events := r.account(d, fields, h, from)
				if t.Seconds == 0 && t.Samples == 0 {
					continue
				}
				w := records[h.holder]
				if w != nil && !h.continues {
					w.Open = false // it ended before this hold began
					out = append(out, *w)
					delete(changed, h.holder)
					w = nil
				}
				if w == nil {
					w = &telemetry.Workload{Namespace: h.namespace, Pod: h.pod, Container: h.container,
						Start: time.UnixMicro(t.First).UTC(), MeanUtil: math.NaN(), P95Util: math.NaN(), PeakMemory: math.NaN()}
					records[h.holder] = w
				}
				w.GPU = *device
				add(w, t, signal)
				w.Events += events
				w.LastSeen = time.UnixMicro(h.last).UTC()
				w.Open = h.open
				changed[h.holder] = true
			}
		})
	if err != nil {
		return nil, nil, fmt.Errorf("read the samples of %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	for h, w := range records {
		// A hold this pass did not continue ends once its holder has been silent longer
		// than the gap.
		if w.Open && !changed[h] && to.Sub(w.LastSeen) > r.cfg.Gap {
			w.Open = false
			changed[h] = true
		}
		if changed[h] {
			out = append(out, *w)
		}
	}
	return out, parts, nil
}

// hourParts accounts a device's samples of [from, to) per hour and workload, the samples
// of none included, as a usage report of each hour's part does.
func (r *Recorder) hourParts(d usage.Device, device *telemetry.GPU, signal string, fields map[string][]telemetry.Series, from, to time.Time) []telemetry.UsagePart {
	var out []telemetry.UsagePart
	for start := from; start.Before(to); {
		hour := start.Truncate(time.Hour)
		end := hour.Add(time.Hour)
		if to.Before(end) {
			end = to
		}
		report := usage.New(telemetry.TimeRange{Start: start, End: end}, r.cfg.Gap)
		byName := map[string]telemetry.Series{}
		report.AddDevice(d, fields, func(s telemetry.Series) (string, bool) {
			name := s.Namespace + "\x00" + s.Pod
			byName[name] = s
			return name, true
		})
		for name, t := range report.Tallies() {
			if t.Seconds == 0 && t.Samples == 0 && t.Joules == 0 && !t.Memory {
				continue
			}
			s := byName[name]
			p := telemetry.UsagePart{GPU: *device, Namespace: s.Namespace, Pod: s.Pod, Start: hour, Signal: signal,
				Seconds: t.Seconds, UtilSeconds: t.UtilSeconds, UtilWeighted: t.UtilWeighted, Joules: t.Joules,
				PeakMemory: math.NaN(), Samples: t.Samples, HeldSeconds: t.HeldSeconds, Profiling: t.Profiling}
			if t.Memory {
				p.PeakMemory = t.PeakMemory
			}
			out = append(out, p)
		}
		start = end
	}
	return out
}

// hold is one holder's uninterrupted stretch of a device's utilisation samples.
type hold struct {
	holder
	start, end time.Time // the part of [from, to) its samples stand for
	last       int64     // its last sample
	continues  bool      // it began before from: the holder's open record goes on
	open       bool      // it goes on at to
}

// holds cuts a device's utilisation samples (those of [from-gap, to)) into each holder's
// holds: a hold ends when its holder reports nothing on the device for longer than the gap.
// Samples of other workloads, or of none, in between do not end it: a device that two
// sources report, one with the pod's labels and one without (a relabelled stream, a second
// exporter), interleaves them at every scrape, and the accounting splits the time between
// them all the same.
func (r *Recorder) holds(device string, util []telemetry.Series, from, to time.Time) []hold {
	gap, until := r.cfg.Gap.Microseconds(), to.UnixMicro()
	times := map[holder][]int64{}
	for _, s := range util {
		h := holderOf(device, s)
		if h.pod == "" && h.namespace == "" && h.container == "" {
			continue // samples of no workload hold nothing
		}
		for _, p := range s.Points {
			if p.Time < until {
				times[h] = append(times[h], p.Time)
			}
		}
	}
	var out []hold
	for h, ts := range times {
		slices.Sort(ts)
		first := 0
		for i, at := range ts {
			if i+1 < len(ts) && ts[i+1]-at <= gap {
				continue // the hold goes on
			}
			hd := hold{holder: h, last: at, continues: ts[first] < from.UnixMicro(),
				start: time.UnixMicro(max(ts[first], from.UnixMicro())), end: time.UnixMicro(min(at+gap, until))}
			hd.open = i+1 == len(ts) && until-at <= gap
			first = i + 1
			if hd.end.After(from) { // else it ended in an earlier pass
				out = append(out, hd)
			}
		}
	}
	slices.SortFunc(out, func(a, b hold) int { return a.start.Compare(b.start) })
	return out
}

// account tallies one hold as a usage report of its time does, and counts the health
// events of its holder that began in it.
func (r *Recorder) account(d usage.Device, fields map[string][]telemetry.Series, h hold, from time.Time) (*usage.Tally, int) {
	report := usage.New(telemetry.TimeRange{Start: h.start, End: h.end}, r.cfg.Gap)
	name := h.name()
	report.AddDevice(d, fields, func(s telemetry.Series) (string, bool) {
		return name, holderOf(h.device, s) == h.holder
	})
	t := report.Tallies()[name]
	if t == nil {
		t = &usage.Tally{}
	}
	var found []telemetry.Event
	for _, field := range health.Fields(nil) {
		for _, s := range fields[field] {
			if holderOf(h.device, s) == h.holder {
				found = append(found, health.Detect(s)...)
			}
		}
	}
	events := 0
	for _, e := range health.Explain(found, fields, health.DefaultCatalog()) { // without an ECC counter's twin
		if !e.Start.Before(h.start) && e.Start.Before(h.end) && !e.Start.Before(from) {
			events++
		}
	}
	return t, events
}

// add adds a pass's tally to a record.
func add(w *telemetry.Workload, t *usage.Tally, signal string) {
	sum := tallyOf(w)
	sum.Merge(t)
	w.GPUHours = sum.Seconds / 3600
	w.UtilHours = sum.UtilSeconds / 3600
	w.MeanUtil = sum.MeanUtil()
	w.P95Util = sum.UtilPercentile(0.95)
	w.IdleHours = sum.IdleSeconds / 3600
	if sum.UtilHistogram != nil {
		for i, s := range sum.UtilHistogram {
			w.UtilHistogram[i] = s / 3600
		}
	}
	w.EnergyKWh = sum.Joules / 3.6e6
	w.PeakMemory = math.NaN()
	if sum.Memory {
		w.PeakMemory = sum.PeakMemory
	}
	w.Profiling = nil
	for field, p := range sum.Profiling {
		if p.Seconds > 0 {
			if w.Profiling == nil {
				w.Profiling = map[string]telemetry.Activity{}
			}
			w.Profiling[field] = p.Activity()
		}
	}
	w.Samples = sum.Samples
	if t.Until > 0 {
		w.End = time.UnixMicro(sum.Until).UTC()
	}
	if t.Seconds > 0 {
		w.UtilSignal = signal
	}
}

// tallyOf is a record as the tally it adds up to.
func tallyOf(w *telemetry.Workload) *usage.Tally {
	t := &usage.Tally{Seconds: w.GPUHours * 3600, UtilSeconds: w.UtilHours * 3600, IdleSeconds: w.IdleHours * 3600,
		Joules: w.EnergyKWh * 3.6e6, PeakMemory: w.PeakMemory, Memory: !math.IsNaN(w.PeakMemory),
		Samples: w.Samples}
	if w.UtilHours > 0 {
		t.UtilWeighted = w.MeanUtil * t.UtilSeconds
	}
	t.UtilHistogram = new([101]float64)
	for i, h := range w.UtilHistogram {
		t.UtilHistogram[i] = h * 3600
	}
	if !w.Start.IsZero() {
		t.First = w.Start.UnixMicro()
	}
	if !w.End.IsZero() {
		t.Until = w.End.UnixMicro()
	}
	if w.Namespace != "" || w.Pod != "" {
		t.HeldSeconds = t.Seconds
	}
	for field, a := range w.Profiling {
		if a.Hours > 0 {
			if t.Profiling == nil {
				t.Profiling = map[string]telemetry.Weighted{}
			}
			t.Profiling[field] = telemetry.Weighted{Seconds: a.Hours * 3600, Sum: a.Mean * a.Hours * 3600}
		}
	}
	return t
}

// Run records until ctx ends: pass after pass while the samples hold more, then every
// interval. A pass that fails is logged and tried again after interval; one another process
// recorded first is simply not needed.
func (r *Recorder) Run(ctx context.Context, interval time.Duration, now func() time.Time) error {
	for {
		p, err := r.Record(ctx, now())
		if !errors.Is(err, errRaced) && !errors.Is(err, errBusy) && ctx.Err() == nil {
			r.count(p, err)
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errRaced):
			r.log.DebugContext(ctx, "workload records: another process recorded the interval")
			continue
		case errors.Is(err, errBusy):
			r.log.DebugContext(ctx, "workload records: another process is recording")
		case err != nil:
			r.log.WarnContext(ctx, "workload records: pass failed, retrying", "retry_in", interval, "err", err)
		case p.Updated > 0:
			r.log.DebugContext(ctx, "workload records: recorded", "from", p.From, "to", p.To, "records", p.Updated, "closed", p.Closed)
		}
		if err == nil && p.More {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// MaxPage is the most records one page holds.
const MaxPage = 10000

// List returns the records q selects, from the position cursor marks (the first page when
// ""), and the cursor of the page after while more follow. A bad query matches
// telemetry.ErrInvalid.
func List(ctx context.Context, store ports.WorkloadStore, q telemetry.WorkloadQuery, cursor string) ([]telemetry.Workload, string, error) {
	switch {
	case q.Limit <= 0 || q.Limit > MaxPage:
		return nil, "", telemetry.Invalid("limit", "must be between 1 and %d, got %d", MaxPage, q.Limit)
	case q.State != "" && q.State != telemetry.WorkloadOpen && q.State != telemetry.WorkloadClosed:
		return nil, "", telemetry.Invalid("state", "must be %s or %s, got %q", telemetry.WorkloadOpen, telemetry.WorkloadClosed, q.State)
	case !q.Range.Start.IsZero() && !q.Range.End.IsZero() && q.Range.End.Before(q.Range.Start):
		return nil, "", telemetry.Invalid("end_time", "is before start_time")
	}
	if cursor != "" {
		var at [2]int64 // end in Unix microseconds, ID
		if err := query.DecodeListCursor(cursor, "w", &at); err != nil {
			return nil, "", err
		}
		q.After = &telemetry.WorkloadPosition{End: time.UnixMicro(at[0]).UTC(), ID: at[1]}
	}
	page, after, err := store.Workloads(ctx, q)
	if err != nil || after == nil {
		return page, "", err
	}
	return page, query.EncodeListCursor("w", [2]int64{after.End.UnixMicro(), after.ID}), nil
}
