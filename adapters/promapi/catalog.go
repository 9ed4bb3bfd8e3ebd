package promapi

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// catalogTTL is how long the devices and metrics read for one query serve the next ones: a
// dashboard's panels and every client refreshing it ask for the same fleet many times a
// second, and listing it was an eighth of a panel's cost, in the API and in PostgreSQL
// (docs/performance.md). A device or metric first stored within the last second may be
// missing from a query; the next read of the catalog finds it, with all its samples.
const catalogTTL = time.Second

// catalogReadShare bounds reading the catalog to a twentieth of the time it serves: listing
// 100,000 GPUs took a third of a second, which every second would cost a third of a core.
const catalogReadShare = 20

// indexedLabels are the device labels a selector most often names exactly (a host's GPUs,
// one GPU): the catalog finds their devices without going through the fleet.
var indexedLabels = [...]string{"Hostname", "UUID"}

// catalog is the store's devices, labelled as dcgm-exporter labels them, and its metric
// names, as read at one time.
type catalog struct {
	until   time.Time // when it is read again
	metrics []string
	devices []catalogDevice
	index   map[labels.Label][]int // devices by the value of each of indexedLabels ("" too)
	targets map[string]bool        // the keys of scrape targets' devices (telemetry.TargetKey)
}

type catalogDevice struct {
	key    string
	target string                    // the key of its scrape target's device, "" for one that is a target
	labels labels.Labels             // the device's, without __name__, the workload's and the families' own
	family map[string][]labels.Label // by metric: labels of that family's series only (err_code, …)
}

func newCatalog(metrics []string, gpus []telemetry.GPUInfo) *catalog {
	cat := &catalog{metrics: metrics, index: map[labels.Label][]int{}, targets: map[string]bool{}}
	for _, g := range gpus {
		if g.IsTarget() {
			cat.targets[g.Key()] = true
		}
		for _, d := range append([]telemetry.GPUInfo{g}, g.Instances...) {
			ls := seriesLabels(d.GPU, telemetry.Sample{})
			for _, name := range indexedLabels {
				l := labels.Label{Name: name, Value: ls.Get(name)}
				cat.index[l] = append(cat.index[l], len(cat.devices))
			}
			dev := catalogDevice{key: d.Key(), labels: ls, family: familyLabels(d.GPU)}
			if instance := d.Labels["instance"]; instance != "" && !d.IsTarget() {
				dev.target = telemetry.TargetKey(instance)
			}
			cat.devices = append(cat.devices, dev)
		}
	}
	return cat
}

// familyLabels returns a device's labels that belong to one family's series, by metric.
func familyLabels(g telemetry.GPU) map[string][]labels.Label {
	var out map[string][]labels.Label
	for name, value := range g.Labels {
		if metric, own, ok := telemetry.SplitFamilyLabel(name); ok && value != "" {
			if out == nil {
				out = map[string][]labels.Label{}
			}
			out[metric] = append(out[metric], labels.Label{Name: own, Value: value})
		}
	}
	return out
}

// candidates returns the metrics the matchers allow and the devices they may allow: their
// matchers on device labels hold (those on the workload wait for the series).
func (c *catalog) candidates(ms []*labels.Matcher) ([]string, []*catalogDevice) {
	var metrics []string
	for _, n := range c.metrics {
		if metricMatches(ms, n) {
			metrics = append(metrics, n)
		}
	}
	if len(metrics) == 0 {
		return nil, nil
	}
	var devices []*catalogDevice
	add := func(d *catalogDevice) {
		if deviceMayMatch(ms, d.labels) {
			devices = append(devices, d)
		}
	}
	if some, ok := c.narrow(ms); ok {
		for _, i := range some {
			add(&c.devices[i])
		}
		return metrics, devices
	}
	for i := range c.devices {
		add(&c.devices[i])
	}
	return metrics, devices
}

// narrow returns the devices an equality matcher on an indexed label allows, the fewest
// of any such matcher; false when no matcher is one.
func (c *catalog) narrow(ms []*labels.Matcher) ([]int, bool) {
	var best []int
	found := false
	for _, m := range ms {
		if m.Type != labels.MatchEqual || !slices.Contains(indexedLabels[:], m.Name) {
			continue
		}
		if some := c.index[labels.Label{Name: m.Name, Value: m.Value}]; !found || len(some) < len(best) {
			best, found = some, true
		}
	}
	return best, found
}

// catalogCache holds the latest catalog; concurrent queries finding it stale wait for one
// read instead of each reading it.
type catalogCache struct {
	mu  sync.Mutex
	cat *catalog
}

func (q *Queryable) catalog(ctx context.Context) (*catalog, error) {
	c := &q.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cat != nil && time.Now().Before(c.cat.until) {
		return c.cat, nil
	}
	began := time.Now()
	metrics, err := q.Inventory.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	gpus, err := q.Inventory.GPUs(ctx, telemetry.GPUFilter{NoSpan: true, Targets: true}) // the series read finds the devices with samples in a span
	if err != nil {
		return nil, err
	}
	cat := newCatalog(metrics, gpus)
	cat.until = began.Add(max(catalogTTL, catalogReadShare*time.Since(began)))
	c.cat = cat
	return cat, nil
}

// seriesLabels returns the labels of a device's series of a metric and workload.
func (d *catalogDevice) seriesLabels(b *labels.ScratchBuilder, s telemetry.Series) labels.Labels {
	b.Reset()
	d.labels.Range(func(l labels.Label) { b.Add(l.Name, l.Value) })
	if metric, folded, ok := telemetry.UnfoldMetric(s.Metric); ok {
		b.Add(model.MetricNameLabel, metric)
		b.Add(folded.Name, folded.Value)
	} else {
		b.Add(model.MetricNameLabel, s.Metric)
	}
	for _, l := range d.family[s.Metric] {
		b.Add(l.Name, l.Value)
	}
	for _, l := range [...]labels.Label{{Name: "container", Value: s.Container}, {Name: "pod", Value: s.Pod}, {Name: "namespace", Value: s.Namespace}} {
		if l.Value != "" {
			b.Add(l.Name, l.Value)
		}
	}
	b.Sort()
	return b.Labels()
}
