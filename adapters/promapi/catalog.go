package promapi

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// catalogTTL is how long the devices and metrics read for one query serve the next ones: a
// dashboard's panels and every client refreshing it ask for the same fleet many times a
// second, and listing it was an eighth of a panel's cost, in the API and in PostgreSQL
// (docs/performance.md). A device or metric first stored within the last second may be
// missing from a query; the next read of the catalog finds it, with all its samples.
const catalogTTL = time.Second

// catalog is the store's devices, labelled as dcgm-exporter labels them, and its metric
// names, as read at one time.
type catalog struct {
	read    time.Time
	metrics []string
	devices []catalogDevice
}

type catalogDevice struct {
	key    string
	labels labels.Labels // the device's, without __name__ and the workload's
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
	if c.cat != nil && time.Since(c.cat.read) < catalogTTL {
		return c.cat, nil
	}
	read := time.Now()
	metrics, err := q.Inventory.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	gpus, err := q.Inventory.GPUs(ctx, telemetry.GPUFilter{NoSpan: true}) // the series read finds the devices with samples in a span
	if err != nil {
		return nil, err
	}
	cat := &catalog{read: read, metrics: metrics}
	for _, g := range gpus {
		for _, d := range append([]telemetry.GPUInfo{g}, g.Instances...) {
			cat.devices = append(cat.devices, catalogDevice{key: d.Key(), labels: seriesLabels(d.GPU, telemetry.Sample{})})
		}
	}
	c.cat = cat
	return cat, nil
}

// seriesLabels returns the labels of a device's series of a metric and workload.
func (d *catalogDevice) seriesLabels(b *labels.ScratchBuilder, s telemetry.Series) labels.Labels {
	b.Reset()
	d.labels.Range(func(l labels.Label) { b.Add(l.Name, l.Value) })
	b.Add(labels.MetricName, s.Metric)
	for _, l := range [...]labels.Label{{Name: "container", Value: s.Container}, {Name: "pod", Value: s.Pod}, {Name: "namespace", Value: s.Namespace}} {
		if l.Value != "" {
			b.Add(l.Name, l.Value)
		}
	}
	b.Sort()
	return b.Labels()
}
