package query

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
)

// Events returns the health events (health.Kinds) of the devices q selects that overlap
// q.Range, explained (health.Explain) by the fleet's catalog, by start, then host and index. An event that began before the window starts at
// the window's first sample in it. A bad query matches telemetry.ErrInvalid.
func (f *Fleet) Events(ctx context.Context, q telemetry.EventQuery) ([]telemetry.Event, error) {
	for _, check := range []struct {
		param string
		got   []string
		known []string
	}{{"kind", q.Kinds, health.Kinds}, {"class", q.Classes, health.Classes}, {"action", q.Actions, health.Actions}} {
		for _, v := range check.got {
			if !slices.Contains(check.known, v) {
				return nil, telemetry.Invalid(check.param, "%q is not one of %s", v, strings.Join(check.known, ", "))
			}
		}
	}
	sel := telemetry.GPUFilter{UUID: q.GPU, Hostname: q.Hostname, Model: q.Model}
	catalog := f.catalog
	if catalog.Len() == 0 {
		catalog = health.DefaultCatalog()
	}
	explain := func(events []telemetry.Event, fields map[string][]telemetry.Series) []telemetry.Event {
		return health.Explain(events, fields, catalog)
	}
	// The fields that explain the kinds asked for are read too; their own events are not
	// wanted then.
	wanted := func(set []string, v string) bool { return len(set) == 0 || slices.Contains(set, v) }
	keep := func(e telemetry.Event) bool {
		return wanted(q.Kinds, e.Kind) && wanted(q.Classes, e.Class) && wanted(q.Actions, e.Action) && (!q.Open || e.Ongoing)
	}
	metrics := health.Fields(q.Kinds)
	if len(q.Kinds) == 0 || slices.Contains(q.Kinds, health.KindXID) {
		// dcgm-exporter's counts of each code's repeats, each code a metric of the store's
		stored, err := f.inv.Metrics(ctx)
		if err != nil {
			return nil, err
		}
		for _, m := range stored {
			if health.IsXIDCount(m) {
				metrics = append(metrics, m)
			}
		}
	}
	return f.detect(ctx, sel, q.Range, metrics, nil, health.Detect, explain, keep)
}

// Idle returns the spans of q.Range in which a device's utilisation stayed under
// q.Threshold for q.For at least, split by whether a pod held it (reason allocated or
// unallocated), by start, then host and index.
func (f *Fleet) Idle(ctx context.Context, q telemetry.IdleQuery) ([]telemetry.Event, error) {
	switch {
	case q.Threshold <= 0 || q.Threshold > 100:
		return nil, telemetry.Invalid("threshold", "must be a utilisation above 0 and at most 100 (%%), got %g", q.Threshold)
	case q.For < time.Second:
		return nil, telemetry.Invalid("for", "must be at least 1s, got %s", q.For)
	}
	sel := telemetry.GPUFilter{Hostname: q.Hostname, Model: q.Model}
	find := func(s telemetry.Series) []telemetry.Event { return health.Idle(s, q.Threshold) }
	return f.detect(ctx, sel, q.Range, []string{health.UtilField, usage.EngineField}, utilisation, find, nil, func(e telemetry.Event) bool {
		return e.End.Sub(e.Start) >= q.For
	})
}

// utilisation keeps a device's utilisation series: DCGM_FI_DEV_GPU_UTIL, or for a MIG
// instance, which never reports it, its graphics engine activity as a percentage.
func utilisation(fields map[string][]telemetry.Series) map[string][]telemetry.Series {
	if util := fields[health.UtilField]; len(util) > 0 || len(fields[usage.EngineField]) == 0 {
		return map[string][]telemetry.Series{health.UtilField: util}
	}
	var out []telemetry.Series
	for _, s := range fields[usage.EngineField] {
		pts := make([]telemetry.Point, len(s.Points))
		for i, p := range s.Points {
			pts[i] = telemetry.Point{Time: p.Time, Value: p.Value * 100}
		}
		s.Metric, s.Points = health.UtilField, pts
		out = append(out, s)
	}
	return map[string][]telemetry.Series{health.UtilField: out}
}

// detect runs find over the series of metrics of the devices sel selects (those pick keeps,
// when not nil), has explain (when not nil) say what a device's events mean from its series,
// and returns the events keep accepts (every one when nil). A device is read at a time (its
// series come together); where its samples of a metric pass from one workload to another
// and back, each stretch of one workload is a series of its own to find, so that a span
// never reaches over another workload's samples, and ends at the first sample after it.
func (f *Fleet) detect(ctx context.Context, sel telemetry.GPUFilter, r telemetry.TimeRange, metrics []string,
	pick func(map[string][]telemetry.Series) map[string][]telemetry.Series,
	find func(telemetry.Series) []telemetry.Event,
	explain func([]telemetry.Event, map[string][]telemetry.Series) []telemetry.Event,
	keep func(telemetry.Event) bool) ([]telemetry.Event, error) {
	var out []telemetry.Event
	err := f.byDevice(ctx, sel, r, metrics, nil, func(device *telemetry.GPU, fields map[string][]telemetry.Series) {
		if pick != nil {
			fields = pick(fields)
		}
		var found []telemetry.Event
		for _, list := range fields {
			times, stretches := stretches(list)
			for _, s := range stretches {
				events := find(s)
				health.Settle(events, times)
				found = append(found, events...)
			}
		}
		if explain != nil {
			found = explain(found, fields)
		}
		for _, e := range found {
			if e.GPU = *device; keep == nil || keep(e) {
				out = append(out, e)
			}
		}
	})
	sortEvents(out)
	return out, err
}

// EachDevice calls fn with every device that has samples of metrics within r, and its
// series of them by metric, a device at a time: what the workload recorder reads.
func (f *Fleet) EachDevice(ctx context.Context, r telemetry.TimeRange, metrics []string,
	listed func([]telemetry.GPU), fn func(*telemetry.GPU, map[string][]telemetry.Series)) error {
	return f.byDevice(ctx, telemetry.GPUFilter{}, r, metrics, listed, fn)
}

// byDevice calls fn with each device sel selects that has samples of metrics within r, and
// its series of them by metric: a series for each workload the device's samples were
// attributed to.
func (f *Fleet) byDevice(ctx context.Context, sel telemetry.GPUFilter, r telemetry.TimeRange, metrics []string,
	listed func([]telemetry.GPU), fn func(*telemetry.GPU, map[string][]telemetry.Series)) error {
	var (
		device *telemetry.GPU
		fields = map[string][]telemetry.Series{}
	)
	err := f.read(ctx, sel, r, metrics, listed, func(g *telemetry.GPU, s telemetry.Series) {
		if device != nil && g != device { // a device's series come together
			fn(device, fields)
			clear(fields)
		}
		device = g
		fields[s.Metric] = append(fields[s.Metric], s)
	})
	if device != nil && err == nil {
		fn(device, fields)
	}
	return err
}

// stretches cuts one device's series of a metric where its samples pass to another
// workload, and returns every sample time, sorted, with the stretches. A device reported by
// several workloads at the same times (a time-sliced GPU) is held by each at once: each
// workload's series is a stretch, whole.
func stretches(list []telemetry.Series) ([]int64, []telemetry.Series) {
	if len(list) == 1 {
		times := make([]int64, len(list[0].Points))
		for i, p := range list[0].Points {
			times[i] = p.Time
		}
		return times, list
	}
	type at struct {
		time          int64
		series, point int
	}
	var all []at
	for si, s := range list {
		for pi, p := range s.Points {
			all = append(all, at{p.Time, si, pi})
		}
	}
	slices.SortFunc(all, func(a, b at) int { return cmp.Compare(a.time, b.time) })
	for i := 1; i < len(all); i++ {
		if all[i].time == all[i-1].time { // held by several at once (time-slicing): each its own
			times := make([]int64, 0, len(all))
			for _, a := range all {
				if len(times) == 0 || times[len(times)-1] != a.time {
					times = append(times, a.time)
				}
			}
			return times, list
		}
	}
	times := make([]int64, len(all))
	var out []telemetry.Series
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].series == all[i].series {
			times[j] = all[j].time
			j++
		}
		s := list[all[i].series]
		s.Points = s.Points[all[i].point : all[j-1].point+1]
		out = append(out, s)
		i = j
	}
	return times, out
}

func sortEvents(events []telemetry.Event) {
	slices.SortStableFunc(events, func(a, b telemetry.Event) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.Index, b.Index),
			cmp.Compare(a.Key(), b.Key()), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Reason, b.Reason))
	})
}
