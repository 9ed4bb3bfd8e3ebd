package main

import (
	"context"
	"errors"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/promexport"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// metricFamilies are the process's own metrics, served at /metrics in every mode. Each reads
// the counts of a component when Prometheus scrapes; a component this mode does not run
// (its field nil) adds no series.
func (w *wiring) metricFamilies() []promexport.Family {
	counter := func(name, help string, labels []string, read func(emit func(float64, ...string))) promexport.Family {
		return promexport.Family{Name: name, Help: help, Kind: promexport.Counter, Labels: labels, Read: read}
	}
	gauge := func(name, help string, labels []string, read func(emit func(float64, ...string))) promexport.Family {
		return promexport.Family{Name: name, Help: help, Kind: promexport.Gauge, Labels: labels, Read: read}
	}
	source := []string{"source"}
	return []promexport.Family{
		// Streamers: what the sources read and what was published.
		counter("telemetry_source_rows_total", "CSV rows read, over every pass (counted when a pass ends).", nil, func(emit func(float64, ...string)) {
			if w.csv != nil {
				emit(float64(w.csv.Stats().Source.Rows))
			}
		}),
		counter("telemetry_source_rejected_rows_total", "Malformed CSV rows skipped, by reason: the field at fault or what was wrong with the record.", []string{"reason"}, func(emit func(float64, ...string)) {
			if w.csv != nil {
				for reason, n := range w.csv.Stats().Source.RejectedBy {
					emit(float64(n), reason)
				}
			}
		}),
		counter("telemetry_source_blank_values_total", "CSV values that were DCGM's no-data sentinels, skipped.", nil, func(emit func(float64, ...string)) {
			if w.csv != nil {
				emit(float64(w.csv.Stats().Source.Blank))
			}
		}),
		counter("telemetry_samples_published_total", "Samples handed to the queue, by source: csv, or live (scrapes and remote_write).", source, func(emit func(float64, ...string)) {
			if w.csv != nil {
				emit(float64(w.csv.Stats().Samples), "csv")
			}
			if w.live != nil {
				emit(float64(w.live.Stats().Samples), "live")
			}
		}),
		counter("telemetry_live_samples_future_total", "Samples of scrapes and remote_write refused as stamped more than --future-tolerance ahead of the clock (CSV rows count under telemetry_source_rejected_rows_total, reason future).", nil, func(emit func(float64, ...string)) {
			if w.live != nil {
				emit(float64(w.live.Stats().Future))
			}
		}),
		counter("telemetry_batches_published_total", "Batches handed to the queue, by source.", source, func(emit func(float64, ...string)) {
			if w.csv != nil {
				emit(float64(w.csv.Stats().Batches), "csv")
			}
			if w.live != nil {
				emit(float64(w.live.Stats().Batches), "live")
			}
		}),

		// Collectors: what was stored, and what was not.
		counter("telemetry_batches_stored_total", "Batches stored.", nil, func(emit func(float64, ...string)) {
			if w.ingest != nil {
				emit(float64(w.ingest.Stats().Batches))
			}
		}),
		counter("telemetry_batches_redelivered_total", "Batches delivered again and recognised as stored before.", nil, func(emit func(float64, ...string)) {
			if w.ingest != nil {
				emit(float64(w.ingest.Stats().Duplicates))
			}
		}),
		counter("telemetry_samples_stored_total", "Samples stored.", nil, func(emit func(float64, ...string)) {
			if w.ingest != nil {
				emit(float64(w.ingest.Stats().Samples))
			}
		}),
		counter("telemetry_samples_not_stored_total", "Samples of new batches left out, by reason: invalid, or already_stored by another batch.", []string{"reason"}, func(emit func(float64, ...string)) {
			if w.ingest != nil {
				st := w.ingest.Stats()
				emit(float64(st.Rejected), "invalid")
				emit(float64(st.AlreadyStored), "already_stored")
			}
		}),

		counter("telemetry_compaction_passes_total", "Passes of the compactor over the devices with head chunks, by result.", []string{"result"}, w.maintenance(func(m sqlstore.MaintenanceStats, emit func(float64, ...string)) {
			emit(float64(m.CompactionPasses-m.CompactionFailures), "ok")
			emit(float64(m.CompactionFailures), "failed")
		})),
		counter("telemetry_compaction_windows_sealed_total", "Two-hour windows of a device sealed into blocks.", nil, w.maintenance(func(m sqlstore.MaintenanceStats, emit func(float64, ...string)) {
			emit(float64(m.WindowsSealed))
		})),
		counter("telemetry_compaction_chunks_rewritten_total", "Chunks read by compaction and written again merged or sealed.", nil, w.maintenance(func(m sqlstore.MaintenanceStats, emit func(float64, ...string)) {
			emit(float64(m.ChunksRewritten))
		})),
		counter("telemetry_compaction_batches_folded_total", "Rows of the batches ledger folded into their window's row.", nil, w.maintenance(func(m sqlstore.MaintenanceStats, emit func(float64, ...string)) {
			emit(float64(m.BatchesFolded))
		})),
		counter("telemetry_retention_passes_total", "Passes of retention, by result.", []string{"result"}, w.maintenance(func(m sqlstore.MaintenanceStats, emit func(float64, ...string)) {
			emit(float64(m.RetentionPasses-m.RetentionFailures), "ok")
			emit(float64(m.RetentionFailures), "failed")
		})),
		counter("telemetry_retention_samples_deleted_total", "Samples retention deleted, in whole chunks and partitions.", nil, w.maintenance(func(m sqlstore.MaintenanceStats, emit func(float64, ...string)) {
			emit(float64(m.SamplesPruned))
		})),

		// The queue between them.
		gauge("telemetry_queue_batches", "Batches in the in-process queue, by state: queued (waiting, a retry's backoff included) or in_flight.", []string{"state"}, func(emit func(float64, ...string)) {
			if w.broker != nil {
				st := w.topic().Stats()
				emit(float64(st.Queued), "queued")
				emit(float64(st.InFlight), "in_flight")
			}
		}),
		gauge("telemetry_queue_oldest_batch_age_seconds", "How long the batch waiting longest in the in-process queue has waited; 0 when none waits.", nil, func(emit func(float64, ...string)) {
			if w.broker != nil {
				age := 0.0
				if oldest := w.topic().Stats().OldestQueued; !oldest.IsZero() {
					age = time.Since(oldest).Seconds()
				}
				emit(age)
			}
		}),
		gauge("telemetry_redis_queue_oldest_batch_age_seconds", "How long the oldest pending batch has waited in Redis; absent while Redis does not answer.", nil, func(emit func(float64, ...string)) {
			if w.redis != nil {
				if d, err := w.redis.OldestWait(context.Background()); err == nil {
					emit(d.Seconds())
				}
			}
		}),
		gauge("telemetry_queue_samples", "Samples in the batches of the in-process queue, queued and in flight.", nil, func(emit func(float64, ...string)) {
			if w.broker != nil {
				emit(float64(w.topic().Stats().Samples))
			}
		}),
		counter("telemetry_queue_dead_letters_total", "Batches of the in-process queue set aside for good.", nil, func(emit func(float64, ...string)) {
			if w.broker != nil {
				emit(float64(w.topic().Stats().DeadLetters))
			}
		}),
		gauge("telemetry_redis_queue_batches", "Batches waiting in Redis (pending, active, scheduled and retrying); absent while Redis does not answer.", nil, func(emit func(float64, ...string)) {
			if w.redis != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if n, err := w.redis.Backlog(ctx); err == nil {
					emit(float64(n))
				}
			}
		}),

		// remote_write.
		counter("telemetry_remote_write_requests_total", "remote_write requests, by result: accepted, malformed (400), unavailable (503: the queue did not accept them, or too many at once) or limited (503: the sender brought more new devices than --remote-write-max-new-devices).", []string{"result"}, func(emit func(float64, ...string)) {
			if w.rw != nil {
				st := w.rw.Stats()
				emit(float64(st.Requests), "accepted")
				emit(float64(st.Malformed), "malformed")
				emit(float64(st.Unavailable), "unavailable")
				emit(float64(st.Limited), "limited")
			}
		}),
		counter("telemetry_remote_write_samples_dropped_total", "remote_write samples not queued, by reason: stale (staleness markers), no_device (series naming no GPU) or invalid (not a number, a time not kept, text past a limit, more than 64 labels: the log names it).", []string{"reason"}, func(emit func(float64, ...string)) {
			if w.rw != nil {
				st := w.rw.Stats()
				emit(float64(st.Stale), "stale")
				emit(float64(st.NoDevice), "no_device")
				emit(float64(st.Rejected), "invalid")
			}
		}),

		// Scrape targets, as Prometheus reports its own.
		gauge("telemetry_scrape_target_up", "1 when the target's last scrape succeeded, 0 when it failed.", []string{"target"}, w.eachTarget(func(t telemetry.Target, emit func(float64, ...string)) {
			up := 0.0
			if t.Health == "up" {
				up = 1
			}
			emit(up, t.URL)
		})),
		gauge("telemetry_scrape_duration_seconds", "How long the target's last scrape took.", []string{"target"}, w.eachTarget(func(t telemetry.Target, emit func(float64, ...string)) {
			emit(t.LastDuration.Seconds(), t.URL)
		})),
		gauge("telemetry_scrape_samples", "Samples the target's last scrape delivered.", []string{"target"}, w.eachTarget(func(t telemetry.Target, emit func(float64, ...string)) {
			emit(float64(t.LastSamples), t.URL)
		})),
		counter("telemetry_scrape_samples_dropped_total", "Samples and exposition lines of the target dropped, by reason: line (a line that does not parse; the rest of its scrape is kept), no_device (a series naming no GPU), or the field at fault.", []string{"target", "reason"}, w.eachTarget(func(t telemetry.Target, emit func(float64, ...string)) {
			for reason, n := range t.DroppedTotal {
				emit(float64(n), t.URL, reason)
			}
		})),
		counter("telemetry_scrapes_total", "Scrapes of the target, failed ones included.", []string{"target"}, w.eachTarget(func(t telemetry.Target, emit func(float64, ...string)) {
			emit(float64(t.Scrapes), t.URL)
		})),
		counter("telemetry_scrape_missed_intervals_total", "Intervals skipped because a scrape and its delivery overran the interval.", []string{"target"}, w.eachTarget(func(t telemetry.Target, emit func(float64, ...string)) {
			emit(float64(t.Missed), t.URL)
		})),
	}
}

// maintenance reads the store's compaction and retention counts, in a process that runs
// them (a collector's).
func (w *wiring) maintenance(read func(sqlstore.MaintenanceStats, func(float64, ...string))) func(func(float64, ...string)) {
	return func(emit func(float64, ...string)) {
		if w.ingest != nil && w.store != nil {
			read(w.store.Maintenance(), emit)
		}
	}
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

// eachTarget reads one value of every scrape target.
func (w *wiring) eachTarget(read func(telemetry.Target, func(float64, ...string))) func(func(float64, ...string)) {
	return func(emit func(float64, ...string)) {
		if w.scraper == nil {
			return
		}
		for _, t := range w.scraper.Targets() {
			read(t, emit)
		}
	}
}
