package remotewrite

import "github.com/prometheus/client_golang/prometheus"

var (
	requestsDesc = prometheus.NewDesc("telemetry_remote_write_requests_total",
		"remote_write requests, by result: accepted, malformed (400), unavailable (503: the queue did not accept them, or too many at once) or limited (503: the sender brought more new devices than --remote-write-max-new-devices).",
		[]string{"result"}, nil)
	droppedDesc = prometheus.NewDesc("telemetry_remote_write_samples_dropped_total",
		"remote_write samples not queued, by reason: stale (staleness markers), no_device (series naming no GPU) or invalid (not a number, a time not kept, text past a limit, more than 64 labels: the log names it).",
		[]string{"reason"}, nil)
)

// Metrics reports the receiver's counts when Prometheus scrapes: requests by result and
// samples dropped by reason.
func (r *Receiver) Metrics() prometheus.Collector { return receiverMetrics{r} }

type receiverMetrics struct{ r *Receiver }

func (receiverMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- droppedDesc
}

func (m receiverMetrics) Collect(ch chan<- prometheus.Metric) {
	st := m.r.Stats()
	for result, n := range map[string]int64{"accepted": st.Requests, "malformed": st.Malformed, "unavailable": st.Unavailable, "limited": st.Limited} {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(n), result)
	}
	for reason, n := range map[string]int64{"stale": st.Stale, "no_device": st.NoDevice, "invalid": st.Rejected} {
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(n), reason)
	}
}
