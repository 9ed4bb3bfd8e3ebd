package sqlstore

import "github.com/prometheus/client_golang/prometheus"

var (
	compactionPassesDesc = prometheus.NewDesc("telemetry_compaction_passes_total",
		"Passes of the compactor over the devices with head chunks, by result.", []string{"result"}, nil)
	windowsSealedDesc = prometheus.NewDesc("telemetry_compaction_windows_sealed_total",
		"Two-hour windows of a device sealed into blocks.", nil, nil)
	chunksRewrittenDesc = prometheus.NewDesc("telemetry_compaction_chunks_rewritten_total",
		"Chunks read by compaction and written again merged or sealed.", nil, nil)
	batchesFoldedDesc = prometheus.NewDesc("telemetry_compaction_batches_folded_total",
		"Rows of the batches ledger folded into their window's row.", nil, nil)
	retentionPassesDesc = prometheus.NewDesc("telemetry_retention_passes_total",
		"Passes of retention, by result.", []string{"result"}, nil)
	samplesPrunedDesc = prometheus.NewDesc("telemetry_retention_samples_deleted_total",
		"Samples retention deleted, in whole chunks and partitions.", nil, nil)
	rollupsPrunedDesc = prometheus.NewDesc("telemetry_retention_rollup_rows_deleted_total",
		"Rows of the downsampled tiers retention deleted (a device's span of buckets each).", nil, nil)
	workloadsPrunedDesc = prometheus.NewDesc("telemetry_retention_workload_records_deleted_total",
		"Closed workload records retention deleted.", nil, nil)
)

// MaintenanceMetrics reports compaction and retention when Prometheus scrapes, for a
// process that runs them (a collector).
func (s *Store) MaintenanceMetrics() prometheus.Collector { return maintenanceMetrics{s} }

type maintenanceMetrics struct{ s *Store }

func (maintenanceMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{compactionPassesDesc, windowsSealedDesc, chunksRewrittenDesc, batchesFoldedDesc,
		retentionPassesDesc, samplesPrunedDesc, rollupsPrunedDesc, workloadsPrunedDesc} {
		ch <- d
	}
}

func (m maintenanceMetrics) Collect(ch chan<- prometheus.Metric) {
	st := m.s.Maintenance()
	counter := func(d *prometheus.Desc, n int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), labels...)
	}
	counter(compactionPassesDesc, st.CompactionPasses-st.CompactionFailures, "ok")
	counter(compactionPassesDesc, st.CompactionFailures, "failed")
	counter(windowsSealedDesc, st.WindowsSealed)
	counter(chunksRewrittenDesc, st.ChunksRewritten)
	counter(batchesFoldedDesc, st.BatchesFolded)
	counter(retentionPassesDesc, st.RetentionPasses-st.RetentionFailures, "ok")
	counter(retentionPassesDesc, st.RetentionFailures, "failed")
	counter(samplesPrunedDesc, st.SamplesPruned)
	counter(rollupsPrunedDesc, st.RollupsPruned)
	counter(workloadsPrunedDesc, st.WorkloadsPruned)
}
