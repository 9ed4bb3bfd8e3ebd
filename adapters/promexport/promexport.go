// Package promexport serves a process's own metrics at /metrics in Prometheus' exposition
// format, with client_golang. Each adapter declares its families (its Metrics collector),
// and this package the domain services': the components keep their counts themselves
// (their Stats), read when Prometheus scrapes, so that the domain imports no metrics
// library and a count is never kept twice. Go's runtime and the process (CPU, memory, file
// descriptors) come with every registry.
package promexport

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry holds a process's collectors.
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

// Register adds the collectors of the components a process runs; a name registered twice
// panics, as client_golang does.
func (r *Registry) Register(cs ...prometheus.Collector) {
	r.reg.MustRegister(cs...)
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
