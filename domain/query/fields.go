package query

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Field coverage: which fields each device really reports, so that a field a node does not
// emit (the GR engine on some H100 nodes, NVIDIA/DCGM #226), or emits as 0 (NVLink on
// some, #316; profiling fields after an Xid 31, #303), reads as "not reported here" rather
// than as an idle GPU or a healthy one.

// neverZero are readings that are never 0 on a working GPU: 0 throughout is a broken field.
var neverZero = []string{"DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK",
	"DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"}

// busyUtil is the mean utilisation (%) over which a GPU is busy: the profiling fields of any
// work (busyFields) should read something then — unlike the pipes (tensor, FP16, FP64),
// which a workload may not use.
const busyUtil = 5

var busyFields = []string{"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_SM_OCCUPANCY", "DCGM_FI_PROF_DRAM_ACTIVE"}

// linkTraffic tells the fields of link traffic, 0 where a link is idle: 0 throughout is odd
// only where most of the device's peers carry some.
func linkTraffic(field string) bool {
	return strings.HasPrefix(field, "DCGM_FI_DEV_NVLINK_BANDWIDTH") || strings.HasPrefix(field, "DCGM_FI_PROF_NVLINK_") ||
		strings.HasPrefix(field, "DCGM_FI_PROF_PCIE_")
}

// Fields returns what each device q selects reports over q.Range, and each kind of device
// (a model's whole GPUs, or its MIG instances of a profile): the fields its kind's other
// devices report and it does not, and those it reports as 0 throughout where 0 means it is
// not really reported. It reads the samples, or where the window reaches back before the
// oldest one kept, the finest downsampled tier (a bucket's count, minimum and maximum say
// as much as its samples; a field's first time is then its first bucket's start).
func (f *Fleet) Fields(ctx context.Context, q telemetry.FieldsQuery) (telemetry.FieldCoverage, error) {
	var out telemetry.FieldCoverage
	if q.Range.Start.IsZero() || q.Range.End.IsZero() {
		return out, telemetry.Invalid("start_time", "a window needs both ends")
	}
	if err := validateRange(q.Range); err != nil {
		return out, err
	}
	infos, err := f.inv.GPUs(ctx, telemetry.GPUFilter{Hostname: q.Hostname, Model: q.Model, NoSpan: true})
	if err != nil {
		return out, err
	}
	var devices []telemetry.GPU
	for _, info := range infos {
		if !info.OnlyInstances {
			devices = append(devices, info.GPU)
		}
		for _, in := range info.Instances {
			devices = append(devices, in.GPU)
		}
	}
	type seen struct {
		telemetry.FieldSeen
		sum float64
	}
	byDevice := make(map[string]map[string]*seen, len(devices))
	keys := make([]string, len(devices))
	for i, g := range devices {
		keys[i] = g.Key()
		byDevice[keys[i]] = map[string]*seen{}
	}
	note := func(key, metric string, first, last time.Time, count int64, sum float64, zero bool) {
		fields := byDevice[key]
		if fields == nil || count == 0 {
			return
		}
		s := fields[metric]
		if s == nil {
			s = &seen{FieldSeen: telemetry.FieldSeen{Field: metric, First: first, Last: last, AllZero: true}}
			fields[metric] = s
		}
		if first.Before(s.First) {
			s.First = first
		}
		if last.After(s.Last) {
			s.Last = last
		}
		s.Samples += count
		s.sum += sum
		s.AllZero = s.AllZero && zero
	}
	step, whole, err := f.beyondSamples(ctx, q.Range)
	if err != nil {
		return out, err
	}
	if len(devices) > 0 {
		if step > 0 {
			err = f.tiers.Summaries(ctx, telemetry.SummaryQuery{GPUs: keys, Range: whole, Step: step}, func(s telemetry.SummarySeries) error {
				for _, b := range s.Summaries {
					// A bucket knows its last sample's time, not its first's: the first is the
					// bucket's start (within the window), up to a step before the sample.
					first := time.UnixMicro(max(b.Start, q.Range.Start.UnixMicro())).UTC()
					note(s.GPU, s.Metric, first, time.UnixMicro(b.LastAt).UTC(), b.Count, b.Sum, b.Min == 0 && b.Max == 0)
				}
				return nil
			})
		} else {
			err = f.series.Series(ctx, telemetry.SeriesQuery{GPUs: keys, Range: q.Range}, func(s telemetry.Series) error {
				for _, p := range s.Points {
					at := time.UnixMicro(p.Time).UTC()
					note(s.GPU, s.Metric, at, at, 1, p.Value, p.Value == 0)
				}
				return nil
			})
		}
		if err != nil {
			return out, err
		}
	}

	// Each kind's fields: how many of its devices report each, and read it other than 0.
	kindOf := func(g telemetry.GPU) [2]string { return [2]string{g.ModelName, g.InstanceProfile} }
	kinds := map[[2]string]*telemetry.KindFields{}
	counts := map[[2]string]map[string]*telemetry.FieldCount{}
	for _, g := range devices {
		k := kindOf(g)
		if kinds[k] == nil {
			kinds[k] = &telemetry.KindFields{Model: k[0], Profile: k[1]}
			counts[k] = map[string]*telemetry.FieldCount{}
		}
		kinds[k].Devices++
		for metric, s := range byDevice[g.Key()] {
			c := counts[k][metric]
			if c == nil {
				c = &telemetry.FieldCount{Field: metric}
				counts[k][metric] = c
			}
			c.Devices++
			if !s.AllZero {
				c.NonZero++
			}
		}
	}
	for k, kind := range kinds {
		for _, c := range counts[k] {
			kind.Fields = append(kind.Fields, *c)
		}
		slices.SortFunc(kind.Fields, func(a, b telemetry.FieldCount) int { return cmp.Compare(a.Field, b.Field) })
		out.Kinds = append(out.Kinds, *kind)
	}
	slices.SortFunc(out.Kinds, func(a, b telemetry.KindFields) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.Profile, b.Profile))
	})

	for _, g := range devices {
		d := telemetry.DeviceFields{GPU: g}
		fields := byDevice[g.Key()]
		for _, s := range fields {
			d.Fields = append(d.Fields, s.FieldSeen)
		}
		slices.SortFunc(d.Fields, func(a, b telemetry.FieldSeen) int { return cmp.Compare(a.Field, b.Field) })
		busy := false
		if u := fields[health.UtilField]; u != nil {
			busy = u.sum/float64(u.Samples) >= busyUtil
		}
		kind := kinds[kindOf(g)]
		for _, c := range counts[kindOf(g)] {
			s := fields[c.Field]
			switch {
			case s == nil && 2*c.Devices > kind.Devices: // a field most of its kind do not report is not theirs
				d.Gaps = append(d.Gaps, telemetry.FieldGap{Field: c.Field, Status: telemetry.FieldNotReported, Peers: c.Devices})
			case s == nil, !s.AllZero:
			case slices.Contains(neverZero, c.Field):
				d.Gaps = append(d.Gaps, telemetry.FieldGap{Field: c.Field, Status: telemetry.FieldAlwaysZero, Peers: c.NonZero})
			case slices.Contains(busyFields, c.Field) && busy:
				d.Gaps = append(d.Gaps, telemetry.FieldGap{Field: c.Field, Status: telemetry.FieldZeroWhileBusy, Peers: c.NonZero})
			case linkTraffic(c.Field) && 2*c.NonZero > c.Devices-1:
				d.Gaps = append(d.Gaps, telemetry.FieldGap{Field: c.Field, Status: telemetry.FieldZeroUnlikePeers, Peers: c.NonZero})
			}
		}
		slices.SortFunc(d.Gaps, func(a, b telemetry.FieldGap) int { return cmp.Compare(a.Field, b.Field) })
		out.Devices = append(out.Devices, d)
	}
	slices.SortFunc(out.Devices, func(a, b telemetry.DeviceFields) int {
		return cmp.Or(cmp.Compare(a.GPU.Hostname, b.GPU.Hostname), cmp.Compare(a.GPU.Index, b.GPU.Index), cmp.Compare(a.GPU.Key(), b.GPU.Key()))
	})
	return out, nil
}
