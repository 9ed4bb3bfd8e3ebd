package main

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/promexport"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/stream"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// collectors are the metrics of the components this process runs, each declared by its
// own package, served at /metrics: a component the mode does not run adds no series.
func (w *wiring) collectors() []prometheus.Collector {
	var out []prometheus.Collector
	if w.csv != nil || w.live != nil {
		var csv func() stream.Stats
		var live func() stream.LiveStats
		if w.csv != nil {
			csv = w.csv.Stats
		}
		if w.live != nil {
			live = w.live.Stats
		}
		out = append(out, promexport.Streaming(csv, live))
	}
	if w.ingest != nil {
		out = append(out, promexport.Ingest(w.ingest.Stats))
		if w.store != nil { // the collector's compactor and retention
			out = append(out, w.store.MaintenanceMetrics())
		}
	}
	if w.recorder != nil {
		out = append(out, promexport.Workloads(w.recorder.Stats))
	}
	if w.broker != nil {
		out = append(out, w.topic().Metrics())
	}
	if w.redis != nil {
		out = append(out, w.redis.Metrics())
	}
	if w.rw != nil {
		out = append(out, w.rw.Metrics())
	}
	if w.scraper != nil {
		out = append(out, w.scraper.Metrics())
	}
	return out
}

// writeResult names a database write's outcome for telemetry_batch_write_duration_seconds:
// stored, or the class of its error, as the collector decides retries on it.
func writeResult(err error) string {
	switch {
	case err == nil:
		return "stored"
	case errors.Is(err, telemetry.ErrInvalid):
		return "invalid"
	case errors.Is(err, telemetry.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}
