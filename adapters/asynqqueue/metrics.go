package asynqqueue

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	oldestDesc = prometheus.NewDesc("telemetry_redis_queue_oldest_batch_age_seconds",
		"How long the oldest pending batch has waited in Redis; absent while Redis does not answer.", nil, nil)
	backlogDesc = prometheus.NewDesc("telemetry_redis_queue_batches",
		"Batches waiting in Redis (pending, active, scheduled and retrying); absent while Redis does not answer.", nil, nil)
)

// Metrics reports the queue in Redis when Prometheus scrapes: its backlog and the oldest
// batch's wait, each absent while Redis does not answer.
func (q *Queue) Metrics() prometheus.Collector { return queueMetrics{q} }

type queueMetrics struct{ q *Queue }

func (queueMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- oldestDesc; ch <- backlogDesc }

func (m queueMetrics) Collect(ch chan<- prometheus.Metric) {
	// A scrape waits for Redis two seconds at most, well within Prometheus' scrape timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if d, err := m.q.OldestWait(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, d.Seconds())
	}
	if n, err := m.q.Backlog(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(n))
	}
}
