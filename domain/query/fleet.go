package query

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// MaxTop is the most devices a top or bottom list holds.
const MaxTop = 1000

// sketchAccuracy is the relative accuracy of fleet percentiles: a group's values are kept
// in a DDSketch of a few kilobytes, not one by one, however many samples the window holds.
const sketchAccuracy = 0.01

// Fleet answers questions about many devices at once — aggregates by group, the devices
// highest or lowest in a metric, every device's latest value — reading their series one
// at a time: no more than one device's series of the window is held, whatever the fleet.
type Fleet struct {
	inv     ports.Inventory
	series  ports.SeriesReader
	tiers   ports.SummaryReader // nil: the samples answer everything
	records ports.WorkloadStore // nil: usage reports read the samples
	catalog health.Catalog      // zero: health.DefaultCatalog
}

// WithCatalog has events explained by catalog rather than the XID catalog the project ships.
func (f *Fleet) WithCatalog(catalog health.Catalog) *Fleet {
	f.catalog = catalog
	return f
}

// WithTiers has the fleet's top and latest lists over a day or more read the coarsest
// downsampled tier, which answers them exactly (avg, min, max, last, count), rather than
// every sample of the fleet.
func (f *Fleet) WithTiers(tiers ports.SummaryReader) *Fleet {
	f.tiers = tiers
	return f
}

// tiersFrom is the window from which the top and latest lists read the tiers: a day, a row
// of their finest tier; shorter windows hold few enough samples to stream.
const tiersFrom = 24 * time.Hour

// NewFleet returns a fleet query service.
func NewFleet(inv ports.Inventory, series ports.SeriesReader) *Fleet {
	return &Fleet{inv: inv, series: series}
}

// Aggregate summarises q's samples in groups, by group name. Over a day or more, unless
// q.MaxResolution says raw, it reads the coarsest tier allowed: count, avg, min and max are
// then those of the samples still, the percentiles those of the buckets' means (each
// weighted by its samples), and Resolution says the tier's step. A bad query matches
// telemetry.ErrInvalid.
func (f *Fleet) Aggregate(ctx context.Context, q telemetry.FleetQuery, by telemetry.Grouping) (telemetry.FleetAggregate, error) {
	var out telemetry.FleetAggregate
	name, err := groupName(by)
	if err != nil {
		return out, err
	}
	type group struct {
		acc     Acc
		sketch  *ddsketch.DDSketch // for the percentiles
		devices map[string]bool
	}
	groups := map[string]*group{}
	groupOf := func(g *telemetry.GPU, s telemetry.Series) *group {
		key := name(g, s)
		gr := groups[key]
		if gr == nil {
			sk, err := ddsketch.NewDefaultDDSketch(sketchAccuracy)
			if err != nil {
				panic(err) // the accuracy is a valid constant
			}
			gr = &group{sketch: sk, devices: map[string]bool{}}
			groups[key] = gr
		}
		gr.devices[s.GPU] = true
		return gr
	}
	byKey := map[string]*telemetry.GPU{}
	out.Resolution, err = f.eachOf(ctx, q, q.Devices(), func(list []telemetry.GPU) {
		for i := range list {
			byKey[list[i].Key()] = &list[i]
		}
	}, func(g *telemetry.GPU, s telemetry.Series) {
		gr := groupOf(g, s)
		for _, p := range s.Points {
			if finite(p.Value) {
				gr.acc.Add(p)
				_ = gr.sketch.Add(p.Value) // finite values always fit
			}
		}
	}, func(s telemetry.SummarySeries) {
		g := byKey[s.GPU]
		if g == nil {
			return
		}
		gr := groupOf(g, telemetry.Series{GPU: s.GPU, Metric: s.Metric, Container: s.Container, Pod: s.Pod, Namespace: s.Namespace})
		for _, sm := range s.Summaries {
			gr.acc.Merge(sm)
			_ = gr.sketch.AddWithCount(sm.Sum/float64(sm.Count), float64(sm.Count)) // buckets hold finite values only
		}
	})
	if err != nil {
		return out, err
	}
	out.Groups = make([]telemetry.FleetGroup, 0, len(groups))
	for key, gr := range groups {
		fg := telemetry.FleetGroup{Group: key, Devices: len(gr.devices), Samples: gr.acc.Count}
		if fg.Samples > 0 {
			fg.Avg, fg.Min, fg.Max = gr.acc.Value(telemetry.AggAvg), gr.acc.Min, gr.acc.Max
			ps, _ := gr.sketch.GetValuesAtQuantiles([]float64{0.5, 0.95, 0.99})
			// The sketch's values are within 1 % of the data's: never outside its range.
			fg.P50, fg.P95, fg.P99 = clamp(ps[0], fg.Min, fg.Max), clamp(ps[1], fg.Min, fg.Max), clamp(ps[2], fg.Min, fg.Max)
		}
		out.Groups = append(out.Groups, fg)
	}
	slices.SortFunc(out.Groups, func(a, b telemetry.FleetGroup) int { return cmp.Compare(a.Group, b.Group) })
	return out, nil
}

// groupName returns what names a sample's group under by.
func groupName(by telemetry.Grouping) (func(*telemetry.GPU, telemetry.Series) string, error) {
	switch by {
	case telemetry.GroupNone:
		return func(*telemetry.GPU, telemetry.Series) string { return "" }, nil
	case telemetry.GroupHost:
		return func(g *telemetry.GPU, _ telemetry.Series) string { return g.Hostname }, nil
	case telemetry.GroupModel:
		return func(g *telemetry.GPU, _ telemetry.Series) string { return g.ModelName }, nil
	case telemetry.GroupGPU:
		return func(g *telemetry.GPU, _ telemetry.Series) string { return g.Key() }, nil
	case telemetry.GroupNamespace:
		return func(_ *telemetry.GPU, s telemetry.Series) string { return s.Namespace }, nil
	case telemetry.GroupPod:
		// Pods are named within their namespace.
		return func(_ *telemetry.GPU, s telemetry.Series) string {
			if s.Pod == "" {
				return ""
			}
			return s.Namespace + "/" + s.Pod
		}, nil
	}
	if label, ok := strings.CutPrefix(string(by), telemetry.LabelGrouping); ok && label != "" {
		return func(g *telemetry.GPU, _ telemetry.Series) string { return g.Labels[label] }, nil
	}
	return nil, telemetry.Invalid("by", "%q is not one of host, model, gpu, namespace, pod or label:<name>", by)
}

func clamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }

// Top returns the n devices with the highest agg of q's samples (the lowest when bottom),
// ties by host, index and key; devices without samples in the window are left out.
func (f *Fleet) Top(ctx context.Context, q telemetry.FleetQuery, agg telemetry.Aggregation, n int, bottom bool) ([]telemetry.DeviceValue, error) {
	switch {
	case n < 1 || n > MaxTop:
		return nil, telemetry.Invalid("n", "must be between 1 and %d, got %d", MaxTop, n)
	case !slices.Contains(telemetry.Aggregations, agg):
		return nil, telemetry.Invalid("agg", "%q is not one of avg, min, max, last, count", agg)
	}
	devices, stats, err := f.stats(ctx, q, q.Devices())
	if err != nil {
		return nil, err
	}
	var out []telemetry.DeviceValue
	for i, g := range devices {
		if st := &stats[i]; st.Count > 0 {
			out = append(out, telemetry.DeviceValue{GPU: g, Value: st.Value(agg), Time: time.UnixMicro(st.Last.Time).UTC(), Samples: st.Count})
		}
	}
	slices.SortStableFunc(out, func(a, b telemetry.DeviceValue) int { // devices are in listing order
		if bottom {
			return cmp.Compare(a.Value, b.Value)
		}
		return cmp.Compare(b.Value, a.Value)
	})
	return out[:min(n, len(out))], nil
}

// Latest returns a page of the devices q selects — those of limit GPUs at most (each GPU
// with its MIG instances), after the position cursor marks ("" for the first page) — in
// listing order (host, index, key), each with its newest sample within q.Range: a fleet
// heatmap in one call, bounded whatever the fleet's size. A device without a sample has
// Samples 0. next is the cursor of the page after, "" when no GPU follows. A bad limit or
// cursor matches telemetry.ErrInvalid.
func (f *Fleet) Latest(ctx context.Context, q telemetry.FleetQuery, limit int, cursor string) (page []telemetry.DeviceValue, next string, err error) {
	if limit < 1 || limit > MaxFleetLimit {
		return nil, "", telemetry.Invalid("limit", "must be between 1 and %d, got %d", MaxFleetLimit, limit)
	}
	sel := telemetry.GPUFilter{Hostname: q.Hostname, Model: q.Model, Limit: limit + 1} // one more tells whether a page follows
	if cursor != "" {
		var at telemetry.GPUPosition
		if err := DecodeListCursor(cursor, "g", &at); err != nil {
			return nil, "", err
		}
		sel.After = &at
	}
	devices, stats, err := f.stats(ctx, q, sel)
	if err != nil {
		return nil, "", err
	}
	gpus := 0
	for i, g := range devices {
		if i == 0 || !sameGPU(g, devices[i-1]) {
			if gpus++; gpus > limit {
				last := devices[i-1]
				devices, next = devices[:i], EncodeListCursor("g", telemetry.GPUPosition{Hostname: last.Hostname, Index: last.Index, UUID: last.UUID})
				break
			}
		}
	}
	page = make([]telemetry.DeviceValue, len(devices))
	for i, g := range devices {
		page[i] = telemetry.DeviceValue{GPU: g}
		if st := stats[i]; st.Count > 0 {
			page[i].Value, page[i].Time, page[i].Samples = st.Last.Value, time.UnixMicro(st.Last.Time).UTC(), 1
		}
	}
	return page, next, nil
}

// sameGPU reports whether two devices are one GPU or its MIG instances, as listings key
// them.
func sameGPU(a, b telemetry.GPU) bool {
	return a.Hostname == b.Hostname && a.Index == b.Index && a.UUID == b.UUID
}

// stats gathers each device's samples of q, the devices sel lists, in listing order.
func (f *Fleet) stats(ctx context.Context, q telemetry.FleetQuery, sel telemetry.GPUFilter) ([]telemetry.GPU, []Acc, error) {
	var devices []telemetry.GPU
	index := map[string]int{}
	var stats []Acc
	_, err := f.eachOf(ctx, q, sel, func(list []telemetry.GPU) {
		devices = list
		stats = make([]Acc, len(list))
		for i, g := range list {
			index[g.Key()] = i
		}
	}, func(_ *telemetry.GPU, s telemetry.Series) {
		acc := &stats[index[s.GPU]]
		for _, p := range s.Points {
			acc.Add(p)
		}
	}, func(s telemetry.SummarySeries) {
		acc := &stats[index[s.GPU]]
		for _, sm := range s.Summaries {
			acc.Merge(sm)
		}
	})
	return devices, stats, err
}

// eachOf calls listed, when set, with the devices sel lists, then fn with each of their
// series of q's metric within q.Range — or, when summarised is set and the window is
// tiersFrom or more, summarised with each series in buckets of the coarsest tier
// q.MaxResolution allows. It returns the step of the tier it read, 0 for the samples.
func (f *Fleet) eachOf(ctx context.Context, q telemetry.FleetQuery, sel telemetry.GPUFilter, listed func([]telemetry.GPU),
	fn func(*telemetry.GPU, telemetry.Series), summarised func(telemetry.SummarySeries)) (time.Duration, error) {
	if q.Metric == "" {
		return 0, telemetry.Invalid("metric", "is required: a DCGM field such as DCGM_FI_DEV_GPU_UTIL")
	}
	var step time.Duration
	if f.tiers != nil && summarised != nil && q.Range.End.Sub(q.Range.Start) >= tiersFrom && q.MaxResolution != telemetry.RawResolution {
		for _, s := range f.tiers.SummarySteps() { // finest first
			if q.MaxResolution == telemetry.AnyResolution || s <= q.MaxResolution {
				step = s
			}
		}
	}
	if step == 0 {
		return 0, f.read(ctx, sel, q.Range, []string{q.Metric}, listed, fn)
	}
	return step, f.readSummaries(ctx, sel, q.Range, []string{q.Metric}, step, listed, summarised)
}

// readSummaries is read over the tier of step: listed with the devices sel selects, then
// fn with each of their series of metrics within r in buckets.
func (f *Fleet) readSummaries(ctx context.Context, sel telemetry.GPUFilter, r telemetry.TimeRange, metrics []string, step time.Duration,
	listed func([]telemetry.GPU), fn func(telemetry.SummarySeries)) error {
	devices, sq, err := f.list(ctx, sel, r, metrics)
	if err != nil {
		return err
	}
	if listed != nil {
		listed(devices)
	}
	if len(devices) == 0 {
		return nil
	}
	return f.tiers.Summaries(ctx, telemetry.SummaryQuery{GPUs: sq.GPUs, Range: sq.Range, Metrics: sq.Metrics, Step: step},
		func(s telemetry.SummarySeries) error {
			fn(s)
			return nil
		})
}

// list returns the devices sel selects and the query of their series of metrics within r,
// which must be bounded at both ends.
func (f *Fleet) list(ctx context.Context, sel telemetry.GPUFilter, r telemetry.TimeRange, metrics []string) ([]telemetry.GPU, telemetry.SeriesQuery, error) {
	sq := telemetry.SeriesQuery{Range: r, Metrics: metrics}
	if r.Start.IsZero() || r.End.IsZero() {
		return nil, sq, telemetry.Invalid("start_time", "a window needs both ends")
	}
	if err := validateRange(r); err != nil {
		return nil, sq, err
	}
	sel.NoSpan = true
	infos, err := f.inv.GPUs(ctx, sel)
	if err != nil {
		return nil, sq, err
	}
	devices := make([]telemetry.GPU, len(infos))
	sq.GPUs = make([]string, len(infos))
	for i := range infos {
		devices[i] = infos[i].GPU
		sq.GPUs[i] = devices[i].Key()
	}
	return devices, sq, nil
}

// read calls listed with the devices sel selects, then fn with each of their series of
// metrics within r, which must be bounded at both ends.
func (f *Fleet) read(ctx context.Context, sel telemetry.GPUFilter, r telemetry.TimeRange, metrics []string,
	listed func([]telemetry.GPU), fn func(*telemetry.GPU, telemetry.Series)) error {
	devices, sq, err := f.list(ctx, sel, r, metrics)
	if err != nil {
		return err
	}
	byKey := make(map[string]*telemetry.GPU, len(devices))
	for i := range devices {
		byKey[devices[i].Key()] = &devices[i]
	}
	if listed != nil {
		listed(devices)
	}
	if len(devices) == 0 {
		return nil
	}
	return f.series.Series(ctx, sq, func(s telemetry.Series) error {
		if g := byKey[s.GPU]; g != nil {
			fn(g, s)
		}
		return nil
	})
}
