package scrapesource

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	targetLabel  = []string{"target"}
	upDesc       = prometheus.NewDesc("telemetry_scrape_target_up", "1 when the target's last scrape succeeded, 0 when it failed.", targetLabel, nil)
	durationDesc = prometheus.NewDesc("telemetry_scrape_duration_seconds", "How long the target's last scrape took.", targetLabel, nil)
	samplesDesc  = prometheus.NewDesc("telemetry_scrape_samples", "Samples the target's last scrape delivered.", targetLabel, nil)
	droppedDesc  = prometheus.NewDesc("telemetry_scrape_samples_dropped_total",
		"Samples and exposition lines of the target dropped, by reason: line (a line that does not parse; the rest of its scrape is kept), no_device (a series naming no GPU), or the field at fault.",
		[]string{"target", "reason"}, nil)
	scrapesDesc = prometheus.NewDesc("telemetry_scrapes_total", "Scrapes of the target, failed ones included.", targetLabel, nil)
	missedDesc  = prometheus.NewDesc("telemetry_scrape_missed_intervals_total",
		"Intervals skipped because a scrape and its delivery overran the interval.", targetLabel, nil)
)

// Metrics reports every target when Prometheus scrapes, as Prometheus reports its own:
// up, the last scrape's duration and samples, and counts of scrapes, drops and misses.
func (s *Scraper) Metrics() prometheus.Collector { return scraperMetrics{s} }

type scraperMetrics struct{ s *Scraper }

func (scraperMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, durationDesc, samplesDesc, droppedDesc, scrapesDesc, missedDesc} {
		ch <- d
	}
}

func (m scraperMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, t := range m.s.Targets() {
		up := 0.0
		if t.Health == "up" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, t.URL)
		ch <- prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, t.LastDuration.Seconds(), t.URL)
		ch <- prometheus.MustNewConstMetric(samplesDesc, prometheus.GaugeValue, float64(t.LastSamples), t.URL)
		for reason, n := range t.DroppedTotal {
			ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(n), t.URL, reason)
		}
		ch <- prometheus.MustNewConstMetric(scrapesDesc, prometheus.CounterValue, float64(t.Scrapes), t.URL)
		ch <- prometheus.MustNewConstMetric(missedDesc, prometheus.CounterValue, float64(t.Missed), t.URL)
	}
}
