package memqueue

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	batchesDesc = prometheus.NewDesc("telemetry_queue_batches",
		"Batches in the in-process queue, by state: queued (waiting, a retry's backoff included) or in_flight.", []string{"state"}, nil)
	oldestDesc = prometheus.NewDesc("telemetry_queue_oldest_batch_age_seconds",
		"How long the batch waiting longest in the in-process queue has waited; 0 when none waits.", nil, nil)
	samplesDesc = prometheus.NewDesc("telemetry_queue_samples",
		"Samples in the batches of the in-process queue, queued and in flight.", nil, nil)
	deadDesc = prometheus.NewDesc("telemetry_queue_dead_letters_total",
		"Batches of the in-process queue set aside for good.", nil, nil)
)

// Metrics reports the topic's state when Prometheus scrapes: its batches by state, their
// samples, the oldest one's wait and the dead letters.
func (t *Topic) Metrics() prometheus.Collector { return topicMetrics{t} }

type topicMetrics struct{ t *Topic }

func (topicMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{batchesDesc, oldestDesc, samplesDesc, deadDesc} {
		ch <- d
	}
}

func (m topicMetrics) Collect(ch chan<- prometheus.Metric) {
	st := m.t.Stats()
	age := 0.0
	if !st.OldestQueued.IsZero() {
		age = time.Since(st.OldestQueued).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(batchesDesc, prometheus.GaugeValue, float64(st.Queued), "queued")
	ch <- prometheus.MustNewConstMetric(batchesDesc, prometheus.GaugeValue, float64(st.InFlight), "in_flight")
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(samplesDesc, prometheus.GaugeValue, float64(st.Samples))
	ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.CounterValue, float64(st.DeadLetters))
}
