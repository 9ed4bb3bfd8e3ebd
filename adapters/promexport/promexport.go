// Package promexport serves a process's own metrics at /metrics in Prometheus' exposition
// format, with client_golang. The services keep their counts themselves (their Stats), and
// a Family reads them when Prometheus scrapes: the domain imports no metrics library, and a
// count is never kept twice. Go's runtime and the process (CPU, memory, file descriptors)
// come with every registry.
package promexport

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Kind is a family's metric type.
type Kind int

const (
	Counter Kind = iota // a count that only grows while the process lives
	Gauge               // a value that goes up and down
)

// Family is one metric family read at scrape time. Read calls emit once per series, with as
// many label values as Labels names (none for a family without labels).
type Family struct {
	Name   string // telemetry_…_total for counters, with the unit's suffix (_seconds, _bytes)
	Help   string
	Kind   Kind
	Labels []string
	Read   func(emit func(value float64, labelValues ...string))
}

// Registry holds a process's families.
type Registry struct {
	reg  *prometheus.Registry
	http *prometheus.HistogramVec
}

// New returns a registry with Go's and the process's collectors and the HTTP request
// durations (ObserveHTTP).
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.http = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "telemetry_http_request_duration_seconds",
		Help: "Time to answer HTTP requests, by route (its pattern), method and status code.",
		// From a probe's tenth of a millisecond to a day-long export's seconds.
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"route", "method", "code"})
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), r.http)
	return r
}

// Add registers families; a name registered twice panics, as client_golang does.
func (r *Registry) Add(fs ...Family) {
	for _, f := range fs {
		r.reg.MustRegister(&family{f: f, desc: prometheus.NewDesc(f.Name, f.Help, f.Labels, nil)})
	}
}

// Histogram registers a histogram and returns what observes a value into it, with as many
// label values as labels names.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) func(value float64, labelValues ...string) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	r.reg.MustRegister(h)
	return func(value float64, labelValues ...string) { h.WithLabelValues(labelValues...).Observe(value) }
}

// ObserveHTTP records one request's duration. route is the pattern it matched, "" for none.
func (r *Registry) ObserveHTTP(route, method string, status int, elapsed time.Duration) {
	if route == "" {
		route = "unmatched" // one series for every path no route knows, however many there are
	}
	r.http.WithLabelValues(route, method, strconv.Itoa(status)).Observe(elapsed.Seconds())
}

// Handler serves the registry.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}

// family adapts a Family to prometheus.Collector.
type family struct {
	f    Family
	desc *prometheus.Desc
}

func (c *family) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *family) Collect(ch chan<- prometheus.Metric) {
	kind := prometheus.CounterValue
	if c.f.Kind == Gauge {
		kind = prometheus.GaugeValue
	}
	c.f.Read(func(value float64, labelValues ...string) {
		ch <- prometheus.MustNewConstMetric(c.desc, kind, value, labelValues...)
	})
}
