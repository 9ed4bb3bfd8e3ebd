package health

import (
	"cmp"
	"math"
	"slices"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// The signals a device is ranked by against its peers, each over a window.
const (
	SignalSBE          = "sbe_ecc_rate"         // correctable ECC errors a second
	SignalXID          = "xid_errors"           // XID errors reported (a new code in the gauge)
	SignalThrottle     = "hw_throttle_fraction" // share of the time clocks were slowed by hardware (thermal, power brake, slowdown)
	SignalRemappedRows = "remapped_rows"        // rows remapped, correctable and uncorrectable
	SignalPCIeReplay   = "pcie_replay_rate"     // PCIe packets retried a second
	SignalTempAtPower  = "temp_at_power"        // °C above what its peers run at the same power
)

// Signals lists the signals, and Units their units.
var (
	Signals = []string{SignalSBE, SignalXID, SignalThrottle, SignalRemappedRows, SignalPCIeReplay, SignalTempAtPower}
	Units   = map[string]string{SignalSBE: "errors/s", SignalXID: "errors", SignalThrottle: "fraction", SignalRemappedRows: "rows",
		SignalPCIeReplay: "replays/s", SignalTempAtPower: "°C"}
)

// signalFloor is the least spread of peers a signal is scored against: a deviation smaller
// than it is noise whatever the peers do, and peers that all read the same (0 errors) do not
// make the first error infinitely odd. A score of DefaultOutlierScore then takes 3.5 times it:
// some 13 correctable errors an hour, 4 XIDs, 18 % of the time throttled, 4 rows, 126 replays
// an hour, 10.5 °C.
var signalFloor = map[string]float64{
	SignalSBE: 0.001, SignalXID: 1, SignalThrottle: 0.05, SignalRemappedRows: 1, SignalPCIeReplay: 0.01, SignalTempAtPower: 3,
}

// DefaultOutlierScore is the robust score above which a device is an outlier: Iglewicz and
// Hoaglin's 3.5 for the modified z-score, which a normal sample of peers passes about once
// in 2,000.
const DefaultOutlierScore = 3.5

// MinPeers is the smallest group a device is ranked in, itself included.
const MinPeers = 4

// minPeers is the smallest group a signal is ranked in where MinPeers is too few. A GPU's
// temperature at its power differs by its slot's airflow: among the 8 GPUs of a host, the
// median deviation of so few is no measure of noise (on the bundled fleet's readings, a
// dozen GPUs 5–12 °C above their host's line scored 4–11), while among a model's hundreds
// only those far off do.
var minPeers = map[string]int{SignalTempAtPower: 16}

// fields the signals are read from.
const (
	fieldTemp         = "DCGM_FI_DEV_GPU_TEMP"
	fieldPower        = "DCGM_FI_DEV_POWER_USAGE"
	fieldRemappedUnc  = "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS"
	fieldRemappedCorr = "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS"
)

// SignalFields are the fields DeviceSignals reads.
var SignalFields = []string{fieldSBE, fieldSBEAgg, fieldXID, fieldThrottle, fieldClocksEvent, fieldRemappedUnc, fieldRemappedCorr,
	fieldPCIeReplay, fieldTemp, fieldPower}

// hwThrottle are the throttle reasons of hardware: slowdown, thermal (software's reaction
// to heat included) and power brake.
const hwThrottle = 0x8 | 0x20 | 0x40 | 0x80

// DeviceSignals are one device's signals over a window, and what the temperature signal is
// computed from.
type DeviceSignals struct {
	GPU    telemetry.GPU
	Values map[string]float64 // by signal; a signal of fields the device does not report is absent
	// Mean power (W) and temperature (°C) over the window, NaN when not reported: the
	// temperature signal is the residual of the device's peers' fit of one on the other.
	Power, Temp float64
}

// Measure returns a device's signals from its series by field over a window (a series a
// workload: they are merged by time). Rates are over the time the counter was reported.
func Measure(g telemetry.GPU, fields map[string][]telemetry.Series) DeviceSignals {
	return measure(g, func(field string) []telemetry.Point { return merged(fields[field]) },
		func(field string) float64 { return mean(merged(fields[field])) })
}

// MeasureSummaries returns a device's signals from its downsampled buckets by field, as
// Measure does from its samples, where the samples are gone: the counters'
// increases and the XID gauge's changes from each bucket's last sample (a counter reset or
// an XID replaced within one bucket goes unseen), the share of the time throttled from the
// reasons each bucket ended with (a sample every step), power and temperature as the
// buckets' exact means.
func MeasureSummaries(g telemetry.GPU, fields map[string][]telemetry.SummarySeries) DeviceSignals {
	return measure(g, func(field string) []telemetry.Point { return lastOfBuckets(fields[field]) },
		func(field string) float64 {
			var sum float64
			var count int64
			for _, s := range fields[field] {
				for _, b := range s.Summaries {
					sum, count = sum+b.Sum, count+b.Count
				}
			}
			if count == 0 {
				return math.NaN()
			}
			return sum / float64(count)
		})
}

// lastOfBuckets is a field's buckets as points: each bucket's last sample, by time, each
// time once.
func lastOfBuckets(list []telemetry.SummarySeries) []telemetry.Point {
	series := make([]telemetry.Series, len(list))
	for i, s := range list {
		series[i].Points = make([]telemetry.Point, len(s.Summaries))
		for j, b := range s.Summaries {
			series[i].Points[j] = telemetry.Point{Time: b.LastAt, Value: b.Last}
		}
	}
	return merged(series)
}

// measure computes a device's signals from each field's points, by time, and its mean
// (NaN without points).
func measure(g telemetry.GPU, points func(field string) []telemetry.Point, meanOf func(field string) float64) DeviceSignals {
	d := DeviceSignals{GPU: g, Values: map[string]float64{}, Power: math.NaN(), Temp: math.NaN()}
	rate := func(signal string, pts []telemetry.Point) {
		if len(pts) > 1 && pts[len(pts)-1].Time > pts[0].Time {
			d.Values[signal] = increase(pts) / (float64(pts[len(pts)-1].Time-pts[0].Time) / 1e6)
		}
	}
	sbe := points(fieldSBE)
	if len(sbe) == 0 {
		sbe = points(fieldSBEAgg)
	}
	rate(SignalSBE, sbe)
	if xid := points(fieldXID); len(xid) > 0 {
		n := 0
		for i, p := range xid {
			if p.Value != 0 && (i == 0 || p.Value != xid[i-1].Value) {
				n++
			}
		}
		d.Values[SignalXID] = float64(n)
	}
	reasons := points(fieldClocksEvent)
	if len(reasons) == 0 {
		reasons = points(fieldThrottle)
	}
	if len(reasons) > 1 {
		var slowed, total float64
		for i := range len(reasons) - 1 {
			dt := float64(reasons[i+1].Time - reasons[i].Time)
			total += dt
			if uint64(reasons[i].Value)&hwThrottle != 0 {
				slowed += dt
			}
		}
		d.Values[SignalThrottle] = slowed / total
	}
	unc, corr := points(fieldRemappedUnc), points(fieldRemappedCorr)
	if len(unc) > 0 || len(corr) > 0 {
		d.Values[SignalRemappedRows] = increase(unc) + increase(corr)
	}
	rate(SignalPCIeReplay, points(fieldPCIeReplay))
	if power, temp := meanOf(fieldPower), meanOf(fieldTemp); !math.IsNaN(power) && !math.IsNaN(temp) {
		d.Power, d.Temp = power, temp
	}
	return d
}

// merged is the points of a field's series, by time, each time once (a GPU reported once per
// pod that shares it repeats its readings).
func merged(list []telemetry.Series) []telemetry.Point {
	if len(list) == 1 {
		return list[0].Points
	}
	var out []telemetry.Point
	for _, s := range list {
		out = append(out, s.Points...)
	}
	slices.SortStableFunc(out, func(a, b telemetry.Point) int { return cmp.Compare(a.Time, b.Time) })
	return slices.CompactFunc(out, func(a, b telemetry.Point) bool { return a.Time == b.Time })
}

// increase is a counter's increase over its points, as Prometheus' increase counts it
// without extrapolation: a fall is a reset, after which the counter counts from 0.
func increase(pts []telemetry.Point) float64 {
	var sum float64
	for i := 1; i < len(pts); i++ {
		if d := pts[i].Value - pts[i-1].Value; d >= 0 {
			sum += d
		} else {
			sum += pts[i].Value
		}
	}
	return sum
}

func mean(pts []telemetry.Point) float64 {
	var sum float64
	for _, p := range pts {
		sum += p.Value
	}
	return sum / float64(len(pts))
}

// PeerGroup is how devices are grouped to be compared: by model, by host, or by a label of
// theirs (a rack, a switch).
type PeerGroup struct {
	Name string                     // model, host, label:<name>
	Of   func(telemetry.GPU) string // the group a device is in; "" for none
}

// PeerGroups are the groups by model and by host, and by each label given.
func PeerGroups(labels ...string) []PeerGroup {
	out := []PeerGroup{
		{"model", func(g telemetry.GPU) string { return g.ModelName }},
		{"host", func(g telemetry.GPU) string { return g.Hostname }},
	}
	for _, l := range labels {
		out = append(out, PeerGroup{"label:" + l, func(g telemetry.GPU) string { return g.Labels[l] }})
	}
	return out
}

// Outlier is a device whose signal stands out of a group of its peers.
type Outlier struct {
	GPU    telemetry.GPU
	Signal string
	Value  float64
	// Group is the peer group it stands out of most (model, host, label:<name>), Peer the
	// group's name (the model, the host, the label's value), Peers how many devices it holds
	// (this one included) and Median their median value.
	Group, Peer string
	Peers       int
	Median      float64
	// Score is how far above the peers' median the value is, in robust standard deviations
	// (1.4826 times the median absolute deviation, never under the signal's floor).
	Score float64
}

// Outliers ranks each device's signals against each of its groups of peers (those of
// MinPeers devices or more that report the signal) and returns those scoring above
// threshold, the highest first: a device and signal once, with the group it stands out of
// most. Only deviations upward count: fewer errors than one's peers is no fault. The
// temperature signal is each device's mean temperature less what a least-squares line of
// its model's devices' temperature on power gives at its power.
func Outliers(devices []DeviceSignals, groups []PeerGroup, threshold float64) []Outlier {
	tempResiduals(devices)
	best := map[[2]string]Outlier{}
	for _, group := range groups {
		members := map[string][]int{}
		for i, d := range devices {
			if name := group.Of(d.GPU); name != "" {
				members[name] = append(members[name], i)
			}
		}
		for name, idx := range members {
			for _, signal := range Signals {
				var values []float64
				for _, i := range idx {
					if v, ok := devices[i].Values[signal]; ok {
						values = append(values, v)
					}
				}
				if len(values) < max(MinPeers, minPeers[signal]) {
					continue
				}
				median, scale := robust(values)
				scale = max(scale, signalFloor[signal])
				for _, i := range idx {
					v, ok := devices[i].Values[signal]
					if !ok || v <= median {
						continue
					}
					o := Outlier{GPU: devices[i].GPU, Signal: signal, Value: v, Group: group.Name, Peer: name, Peers: len(values),
						Median: median, Score: (v - median) / scale}
					k := [2]string{o.GPU.Key(), signal}
					if o.Score > threshold && o.Score > best[k].Score {
						best[k] = o
					}
				}
			}
		}
	}
	out := make([]Outlier, 0, len(best))
	for _, o := range best {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b Outlier) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.GPU.Key(), b.GPU.Key()), cmp.Compare(a.Signal, b.Signal))
	})
	return out
}

// robust returns the median of values and 1.4826 times their median absolute deviation: a
// standard deviation that the few values furthest out do not move.
func robust(values []float64) (median, scale float64) {
	median = medianOf(values)
	dev := make([]float64, len(values))
	for i, v := range values {
		dev[i] = math.Abs(v - median)
	}
	return median, 1.4826 * medianOf(dev)
}

func medianOf(values []float64) float64 {
	s := slices.Clone(values)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// tempResiduals sets each device's temperature signal: its mean temperature less its model's
// fit of temperature on power at its mean power (a device of a model with fewer than MinPeers
// reporting both gets none).
func tempResiduals(devices []DeviceSignals) {
	byModel := map[string][]int{}
	for i, d := range devices {
		if !math.IsNaN(d.Power) && !math.IsNaN(d.Temp) {
			byModel[d.GPU.ModelName] = append(byModel[d.GPU.ModelName], i)
		}
	}
	for _, idx := range byModel {
		if len(idx) < MinPeers {
			continue
		}
		var mp, mt float64
		for _, i := range idx {
			mp, mt = mp+devices[i].Power, mt+devices[i].Temp
		}
		mp, mt = mp/float64(len(idx)), mt/float64(len(idx))
		var sxy, sxx float64
		for _, i := range idx {
			dp := devices[i].Power - mp
			sxy, sxx = sxy+dp*(devices[i].Temp-mt), sxx+dp*dp
		}
		slope := 0.0
		if sxx > 0 {
			slope = sxy / sxx
		}
		for _, i := range idx {
			devices[i].Values[SignalTempAtPower] = devices[i].Temp - (mt + slope*(devices[i].Power-mp))
		}
	}
}
