package promexport

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/ingest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/stream"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload"
)

// The domain services keep their counts (their Stats) and import no metrics library: their
// families are declared here, each adapter's in its own package (its Metrics).
var (
	sourceLabel  = []string{"source"}
	rowsDesc     = prometheus.NewDesc("telemetry_source_rows_total", "CSV rows read, over every pass (counted when a pass ends).", nil, nil)
	rejectedDesc = prometheus.NewDesc("telemetry_source_rejected_rows_total",
		"Malformed CSV rows skipped, by reason: the field at fault or what was wrong with the record.", []string{"reason"}, nil)
	blankDesc     = prometheus.NewDesc("telemetry_source_blank_values_total", "CSV values that were DCGM's no-data sentinels, skipped.", nil, nil)
	publishedDesc = prometheus.NewDesc("telemetry_samples_published_total",
		"Samples handed to the queue, by source: csv, or live (scrapes and remote_write).", sourceLabel, nil)
	futureDesc = prometheus.NewDesc("telemetry_live_samples_future_total",
		"Samples of scrapes and remote_write refused as stamped more than --future-tolerance ahead of the clock (CSV rows count under telemetry_source_rejected_rows_total, reason future).", nil, nil)
	batchesPublishedDesc = prometheus.NewDesc("telemetry_batches_published_total", "Batches handed to the queue, by source.", sourceLabel, nil)

	batchesStoredDesc = prometheus.NewDesc("telemetry_batches_stored_total", "Batches stored.", nil, nil)
	redeliveredDesc   = prometheus.NewDesc("telemetry_batches_redelivered_total", "Batches delivered again and recognised as stored before.", nil, nil)
	samplesStoredDesc = prometheus.NewDesc("telemetry_samples_stored_total", "Samples stored.", nil, nil)
	notStoredDesc     = prometheus.NewDesc("telemetry_samples_not_stored_total",
		"Samples of new batches left out, by reason: invalid, or already_stored by another batch.", []string{"reason"}, nil)
)

// Streaming reports what a streamer read and published: the CSV streamer's counts (csv,
// nil when it streams no file) and the live sources' (live, nil without scrapes or
// remote_write).
func Streaming(csv func() stream.Stats, live func() stream.LiveStats) prometheus.Collector {
	return streamingMetrics{csv, live}
}

type streamingMetrics struct {
	csv  func() stream.Stats
	live func() stream.LiveStats
}

func (streamingMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{rowsDesc, rejectedDesc, blankDesc, publishedDesc, futureDesc, batchesPublishedDesc} {
		ch <- d
	}
}

func (m streamingMetrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, n int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), labels...)
	}
	if m.csv != nil {
		st := m.csv()
		counter(rowsDesc, st.Source.Rows)
		for reason, n := range st.Source.RejectedBy {
			counter(rejectedDesc, n, reason)
		}
		counter(blankDesc, st.Source.Blank)
		counter(publishedDesc, st.Samples, "csv")
		counter(batchesPublishedDesc, st.Batches, "csv")
	}
	if m.live != nil {
		st := m.live()
		counter(publishedDesc, st.Samples, "live")
		counter(batchesPublishedDesc, st.Batches, "live")
		counter(futureDesc, st.Future)
	}
}

// Ingest reports what a collector stored, and what it left out.
func Ingest(stats func() ingest.Stats) prometheus.Collector { return ingestMetrics{stats} }

type ingestMetrics struct{ stats func() ingest.Stats }

func (ingestMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{batchesStoredDesc, redeliveredDesc, samplesStoredDesc, notStoredDesc} {
		ch <- d
	}
}

func (m ingestMetrics) Collect(ch chan<- prometheus.Metric) {
	st := m.stats()
	counter := func(d *prometheus.Desc, n int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), labels...)
	}
	counter(batchesStoredDesc, st.Batches)
	counter(redeliveredDesc, st.Duplicates)
	counter(samplesStoredDesc, st.Samples)
	counter(notStoredDesc, st.Rejected, "invalid")
	counter(notStoredDesc, st.AlreadyStored, "already_stored")
}

var (
	recorderPassesDesc = prometheus.NewDesc("telemetry_workload_recorder_passes_total",
		"Passes of the workload recorder over the samples that settled, by result.", []string{"result"}, nil)
	recordsWrittenDesc = prometheus.NewDesc("telemetry_workload_records_written_total",
		"Workload records added or brought up to date, by whether the pass closed them.", []string{"state"}, nil)
	recordedThroughDesc = prometheus.NewDesc("telemetry_workload_recorded_through_timestamp_seconds",
		"How far the samples are recorded as workload records (0 before the first pass): time() minus it is the records' lag.", nil, nil)
)

// Workloads reports what the workload recorder did.
func Workloads(stats func() workload.Stats) prometheus.Collector { return workloadMetrics{stats} }

type workloadMetrics struct{ stats func() workload.Stats }

func (workloadMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{recorderPassesDesc, recordsWrittenDesc, recordedThroughDesc} {
		ch <- d
	}
}

func (m workloadMetrics) Collect(ch chan<- prometheus.Metric) {
	st := m.stats()
	counter := func(d *prometheus.Desc, n int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), labels...)
	}
	counter(recorderPassesDesc, st.Passes-st.Failures, "ok")
	counter(recorderPassesDesc, st.Failures, "failed")
	counter(recordsWrittenDesc, st.Written-st.Closed, "open")
	counter(recordsWrittenDesc, st.Closed, "closed")
	through := 0.0
	if !st.Through.IsZero() {
		through = float64(st.Through.UnixMicro()) / 1e6
	}
	ch <- prometheus.MustNewConstMetric(recordedThroughDesc, prometheus.GaugeValue, through)
}
