// Package usage accounts for what groups of workloads or devices used over a window: GPU
// time, mean utilisation, energy and peak memory, from the samples DCGM reports. It counts
// each physical GPU once, however it is shared:
//
//   - A sample stands for the time from it to the device's next sample of the same field,
//     whatever workload that one is attributed to. A silence longer than twice the device's
//     own reporting interval (the median spacing of its samples) is not use: the sample
//     before it stands for one interval, as do a device's last samples, and never for more
//     than Gap. Only the part of that time inside the window counts, so the reports of
//     adjacent windows add up to the report of both.
//   - A GPU reported once per pod at the same instant (time-slicing, MPS) splits that
//     instant's time and energy equally among those pods.
//   - A MIG instance's utilisation is DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100 where it reports
//     no DCGM_FI_DEV_GPU_UTIL (MIG instances never do). Its GPU time and the energy of the
//     power it repeats from its GPU are its share of the GPU: its compute slices (the Ng of
//     its profile, Ng.NNgb) over those of the GPU's instances. A MIG-partitioned GPU counts
//     through its instances only.
//   - A pod holding two GPUs gets two GPU-hours an hour: each device counts for itself.
//
// A peak is of the samples standing in the window, or in it. Each group says which signal
// gave each of its devices' utilisation.
package usage

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// The fields a report reads.
const (
	UtilField   = "DCGM_FI_DEV_GPU_UTIL"          // %: what GPU time and mean utilisation are read from
	EngineField = "DCGM_FI_PROF_GR_ENGINE_ACTIVE" // ratio: a MIG instance's utilisation, × 100
	PowerField  = "DCGM_FI_DEV_POWER_USAGE"       // W: energy is its integral over time
	MemoryField = "DCGM_FI_DEV_FB_USED"           // MiB: its peak
)

// The profiling fields that say whether a workload keeps its GPU busy: ratios of the time
// the SMs, the tensor pipes and the memory interface were busy.
const (
	SMField     = "DCGM_FI_PROF_SM_ACTIVE"
	TensorField = "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"
	DRAMField   = "DCGM_FI_PROF_DRAM_ACTIVE"
)

// Fields are the fields a report reads.
var Fields = []string{UtilField, EngineField, PowerField, MemoryField}

// IdleBelow is the utilisation (%) under which a device counts as idle: DCGM reports whole
// percents, so an idle GPU reads 0.
const IdleBelow = 1.0

// DefaultGap is the longest a sample stands for unless told otherwise: PromQL's lookback.
const DefaultGap = 5 * time.Minute

// Device is a device as a report counts it: its key, and its share of its physical GPU (1
// for a whole GPU, a MIG instance's slices over its GPU's; 0 leaves it out); and its model,
// whose peaks the traffic of EfficiencyFields is a share of.
type Device struct {
	Key   string
	Share float64
	Model string
}

// Shares returns how each device of a fleet counts: a whole GPU as 1, a MIG instance by its
// compute slices over those of its GPU's instances, and a GPU with instances as 0, since its
// instances count it.
func Shares(devices []telemetry.GPU) map[string]float64 {
	instanceSlices := map[string]int{} // by GPU UUID: its instances' compute slices
	for _, d := range devices {
		if d.Instance != "" {
			instanceSlices[d.UUID] += ComputeSlices(d.InstanceProfile)
		}
	}
	out := make(map[string]float64, len(devices))
	for _, d := range devices {
		switch total := instanceSlices[d.UUID]; {
		case d.Instance != "":
			out[d.Key()] = float64(ComputeSlices(d.InstanceProfile)) / float64(total)
		case total > 0:
			out[d.Key()] = 0
		default:
			out[d.Key()] = 1
		}
	}
	return out
}

// ComputeSlices is the number of compute slices of a MIG GPU instance profile: the 3 of
// "3g.40gb" (and of "1c.3g.40gb", a compute instance in it); 1 when the profile names none.
func ComputeSlices(profile string) int {
	for part := range strings.SplitSeq(profile, ".") {
		if n, err := strconv.Atoi(strings.TrimSuffix(part, "g")); err == nil && strings.HasSuffix(part, "g") && n > 0 {
			return n
		}
	}
	return 1
}

// Signal names the field a device's utilisation was read from.
const (
	SignalUtil   = UtilField
	SignalEngine = EngineField + " × 100"
)

// Report tallies devices' samples in groups over a window.
type Report struct {
	start, end, gap int64 // Unix microseconds
	groups          map[string]*tally
}

type tally struct {
	Tally
	devices map[string]bool
	signals map[string]map[string]bool // signal → devices
}

// Tally is what a group's samples add up to over a window: the sums a report's answers are
// made of, which add up across adjacent windows. Seconds are GPU-seconds: each device's
// time weighted by its share of its GPU and split among the holders of an instant.
type Tally struct {
	Seconds      float64 // covered by utilisation samples
	UtilSeconds  float64 // of which with a value (not a blank)
	UtilWeighted float64 // utilisation × seconds
	IdleSeconds  float64 // of UtilSeconds, with utilisation under IdleBelow
	// UtilHistogram holds the seconds of UtilSeconds at each whole percent of utilisation,
	// 0 to 100 (rounded): what a percentile over the window is read from. Nil until a
	// sample is tallied: tallies summed elsewhere (a usage report's stored hours) keep none.
	UtilHistogram *[101]float64
	Joules        float64
	PeakMemory    float64
	Memory        bool  // whether PeakMemory was seen
	Samples       int64 // utilisation samples in [start, end): adjacent windows count each once
	// HeldSeconds is the part of Seconds attributed to a workload (a namespace or a pod).
	HeldSeconds float64
	// Profiling holds, for each of EfficiencyFields reported, its seconds and its share of
	// the model's peak × seconds.
	Profiling map[string]telemetry.Weighted
	// First is the time of the first utilisation sample counted, Until the end of the time
	// the last one stands for (Unix microseconds); zero when none was.
	First, Until int64
}

// MeanUtil is the time-weighted mean utilisation (%), NaN without a value.
func (t *Tally) MeanUtil() float64 {
	return telemetry.Weighted{Seconds: t.UtilSeconds, Sum: t.UtilWeighted}.Mean()
}

// UtilPercentile is the utilisation (%, a whole percent) under which fraction q of the time
// with a value was spent, NaN without one.
func (t *Tally) UtilPercentile(q float64) float64 {
	if t.UtilSeconds <= 0 {
		return math.NaN()
	}
	if t.UtilHistogram == nil {
		return math.NaN()
	}
	var below float64
	for pct, s := range t.UtilHistogram {
		if below += s; below >= q*t.UtilSeconds*(1-1e-12) {
			return float64(pct)
		}
	}
	return 100
}

// Merge adds o, a tally of the same group over another window, to t.
func (t *Tally) Merge(o *Tally) {
	t.Seconds += o.Seconds
	t.UtilSeconds += o.UtilSeconds
	t.UtilWeighted += o.UtilWeighted
	t.IdleSeconds += o.IdleSeconds
	if o.UtilHistogram != nil {
		if t.UtilHistogram == nil {
			t.UtilHistogram = new([101]float64)
		}
		for i, s := range o.UtilHistogram {
			t.UtilHistogram[i] += s
		}
	}
	t.Joules += o.Joules
	if o.Memory && (!t.Memory || o.PeakMemory > t.PeakMemory) {
		t.PeakMemory, t.Memory = o.PeakMemory, true
	}
	t.Samples += o.Samples
	t.HeldSeconds += o.HeldSeconds
	for field, w := range o.Profiling {
		if t.Profiling == nil {
			t.Profiling = map[string]telemetry.Weighted{}
		}
		t.Profiling[field] = t.Profiling[field].Add(w)
	}
	if o.First != 0 && (t.First == 0 || o.First < t.First) {
		t.First = o.First
	}
	t.Until = max(t.Until, o.Until)
}

// New returns an empty report of window r; samples stand for gap at most.
func New(r telemetry.TimeRange, gap time.Duration) *Report {
	return &Report{start: r.Start.UnixMicro(), end: r.End.UnixMicro(), gap: gap.Microseconds(), groups: map[string]*tally{}}
}

// ReadFrom is how early a report must read for the first samples of its window: the
// sample standing at the window's start may be up to gap before it.
func ReadFrom(r telemetry.TimeRange, gap time.Duration) time.Time { return r.Start.Add(-gap) }

// AddDevice tallies one device's series (by field, a series per workload it was attributed
// to), each sample in the group group names; a sample whose group is not ok is left out,
// though it still ends the time the sample before it stands for.
func (r *Report) AddDevice(d Device, fields map[string][]telemetry.Series, group func(telemetry.Series) (name string, ok bool)) {
	if d.Share <= 0 {
		return
	}
	signal, util, scale := Utilisation(fields)
	r.add(d, signal, util, scale, group)
	r.add(d, PowerField, fields[PowerField], 1, group)
	r.add(d, MemoryField, fields[MemoryField], 1, group)
	for _, field := range EfficiencyFields {
		if len(fields[field]) == 0 {
			continue
		}
		scale := 1.0
		if peak := trafficPeak(d.Model, field); peak > 0 {
			scale = 1 / peak
		} else if peak < 0 {
			continue // traffic of a model whose peak is not known: no share of it
		}
		r.add(d, field, fields[field], scale, group)
	}
}

// Utilisation picks a device's utilisation series from its fields: DCGM_FI_DEV_GPU_UTIL,
// or for a MIG instance, which never reports it, its graphics engine activity, which scale
// makes a percentage; signal names which.
func Utilisation(fields map[string][]telemetry.Series) (signal string, list []telemetry.Series, scale float64) {
	if util := fields[UtilField]; hasPoints(util) || !hasPoints(fields[EngineField]) {
		return SignalUtil, util, 1
	}
	return SignalEngine, fields[EngineField], 100
}

// Add tallies one device of its own GPU (share 1) and one field: AddDevice of that field.
func (r *Report) Add(device, field string, list []telemetry.Series, group func(telemetry.Series) (string, bool)) {
	r.AddDevice(Device{Key: device, Share: 1}, map[string][]telemetry.Series{field: list}, group)
}

func hasPoints(list []telemetry.Series) bool {
	return slices.ContainsFunc(list, func(s telemetry.Series) bool { return len(s.Points) > 0 })
}

// add tallies one field's series of a device; kind is a utilisation signal, PowerField,
// MemoryField or one of EfficiencyFields.
func (r *Report) add(d Device, kind string, list []telemetry.Series, scale float64, group func(telemetry.Series) (string, bool)) {
	if len(list) == 0 {
		return
	}
	type at struct {
		telemetry.Point
		series int
	}
	n := 0
	for _, s := range list {
		n += len(s.Points)
	}
	all := make([]at, 0, n)
	for i, s := range list {
		for _, p := range s.Points {
			all = append(all, at{p, i})
		}
	}
	if len(list) > 1 { // a series' points come in time order
		slices.SortStableFunc(all, func(a, b at) int { return cmp.Compare(a.Time, b.Time) })
	}
	names := make([]string, len(list))
	oks := make([]bool, len(list))
	for i, s := range list {
		names[i], oks[i] = group(s)
	}
	times := make([]int64, len(all))
	for i, p := range all {
		times[i] = p.Time
	}
	interval := r.interval(times)
	for i := 0; i < len(all); {
		// An instant: the samples of one time, one per holder of the device.
		j := i + 1
		for j < len(all) && all[j].Time == all[i].Time {
			j++
		}
		ts, holders := all[i].Time, float64(j-i)
		until := ts + interval
		if j < len(all) && all[j].Time-ts <= 2*interval {
			until = all[j].Time
		}
		until = min(until, ts+r.gap, r.end)
		seconds := float64(max(until-max(ts, r.start), 0)) / 1e6
		if seconds == 0 && (ts < r.start || ts > r.end) {
			i = j
			continue
		}
		weight := d.Share / holders
		for _, p := range all[i:j] {
			if !oks[p.series] {
				continue
			}
			t := r.group(names[p.series])
			t.devices[d.Key] = true
			finite := !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0)
			switch kind {
			case PowerField:
				if finite {
					t.Joules += p.Value * seconds * weight
				}
			case MemoryField:
				if finite && (!t.Memory || p.Value > t.PeakMemory) {
					t.PeakMemory, t.Memory = p.Value, true
				}
			case SMField, TensorField, DRAMField, EngineField, SMOccupancyField, FP16Field, FP32Field, FP64Field,
				PCIeTxField, PCIeRxField, NVLinkTxField, NVLinkRxField:
				if finite {
					if t.Profiling == nil {
						t.Profiling = map[string]telemetry.Weighted{}
					}
					t.Profiling[kind] = t.Profiling[kind].Add(telemetry.Weighted{Seconds: seconds * weight, Sum: p.Value * scale * seconds * weight})
				}
			default: // utilisation
				if t.signals[kind] == nil {
					t.signals[kind] = map[string]bool{}
				}
				t.signals[kind][d.Key] = true
				t.Seconds += seconds * weight
				if s := list[p.series]; s.Namespace != "" || s.Pod != "" {
					t.HeldSeconds += seconds * weight
				}
				if ts >= r.start && ts < r.end {
					t.Samples++ // in one of adjacent windows only
				}
				if t.First == 0 || max(ts, r.start) < t.First {
					t.First = max(ts, r.start)
				}
				t.Until = max(t.Until, until)
				if finite {
					util := p.Value * scale
					t.UtilSeconds += seconds * weight
					t.UtilWeighted += util * seconds * weight
					if t.UtilHistogram == nil {
						t.UtilHistogram = new([101]float64)
					}
					t.UtilHistogram[int(math.Round(min(max(util, 0), 100)))] += seconds * weight
					if util < IdleBelow {
						t.IdleSeconds += seconds * weight
					}
				}
			}
		}
		i = j
	}
}

// interval is a device's reporting interval: the median spacing of its sample times
// (ascending), at most the gap; the gap when it has one time only.
func (r *Report) interval(times []int64) int64 {
	var steps []int64
	for i := 1; i < len(times); i++ {
		if d := times[i] - times[i-1]; d > 0 {
			steps = append(steps, d)
		}
	}
	if len(steps) == 0 {
		return r.gap
	}
	slices.Sort(steps)
	return min(steps[len(steps)/2], r.gap)
}

func (r *Report) group(name string) *tally {
	t := r.groups[name]
	if t == nil {
		t = &tally{devices: map[string]bool{}, signals: map[string]map[string]bool{}}
		r.groups[name] = t
	}
	return t
}

// AddTally adds to group a device's tally made elsewhere — over another window, or summed
// over hours — whose utilisation was read from signal.
func (r *Report) AddTally(device, group, signal string, t *Tally) {
	g := r.group(group)
	g.devices[device] = true
	if signal != "" && (t.Seconds > 0 || t.Samples > 0) {
		if g.signals[signal] == nil {
			g.signals[signal] = map[string]bool{}
		}
		g.signals[signal][device] = true
	}
	g.Merge(t)
}

// AddReport adds the groups of o, a report of another window, to r's.
func (r *Report) AddReport(o *Report) {
	for name, t := range o.groups {
		g := r.group(name)
		g.Merge(&t.Tally)
		for d := range t.devices {
			g.devices[d] = true
		}
		for signal, devices := range t.signals {
			if g.signals[signal] == nil {
				g.signals[signal] = map[string]bool{}
			}
			for d := range devices {
				g.signals[signal][d] = true
			}
		}
	}
}

// Tallies returns each group's tally, by name.
func (r *Report) Tallies() map[string]*Tally {
	out := make(map[string]*Tally, len(r.groups))
	for name, t := range r.groups {
		out[name] = &t.Tally
	}
	return out
}

// Usage returns each group's usage, by name.
func (r *Report) Usage() []telemetry.Usage {
	out := make([]telemetry.Usage, 0, len(r.groups))
	for name, t := range r.groups {
		u := telemetry.Usage{Group: name, Devices: len(t.devices), GPUHours: t.Seconds / 3600,
			EnergyKWh: t.Joules / 3.6e6, Samples: t.Samples, PeakMemory: math.NaN(), MeanUtil: t.MeanUtil()}
		if t.Memory {
			u.PeakMemory = t.PeakMemory
		}
		u.Profiling, u.Class = efficiency(&t.Tally)
		if len(t.signals) > 0 {
			u.UtilSignals = make(map[string]int, len(t.signals))
			for signal, devices := range t.signals {
				u.UtilSignals[signal] = len(devices)
			}
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b telemetry.Usage) int { return cmp.Compare(a.Group, b.Group) })
	return out
}
