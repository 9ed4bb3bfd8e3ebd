package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// benchStorage is make bench's scenario against VictoriaMetrics on two shapes of the same
// data: the bundled fleet as the simulator moves it (~2,500 series), scraped every 10 s for
// two hours (1.8 M samples: what the storage target was set on) and every 30 s for seven days
// (50 M samples: what a week of history looks like), sent as Prometheus remote_write sends a
// scrape's samples, to each in the same run. Each is timed until every sample is queryable,
// then measured on disk: VictoriaMetrics after a forced merge (its samples and index), the
// pipeline once its compactor has sealed every window — its chunks' content, its tables as
// they are (no VACUUM: what a user sees), and after VACUUM FULL. Each shape is measured
// twice: as the simulator moves it — its gauges repeat exactly every five minutes, which a
// compressor that sees across a series' whole history (VictoriaMetrics' zstd) reduces to
// almost nothing — and with noise, as a real fleet's values never repeat.
// TELEMETRY_BENCH_SHAPE=2h or =7d runs one shape (both ways), =2h-noisy or =7d-noisy its
// noisy twin alone.
func benchStorage(b *testing.B) {
	vmBin, err := exec.LookPath("victoria-metrics")
	require.NoError(b, err, "victoria-metrics is not installed (make bench installs Debian's)")
	type result struct {
		rate                     float64
		bytes, content, vacuumed float64 // a sample
	}
	var table, year strings.Builder
	year.WriteString("\n| data shape | bytes a series keeps for a year: VictoriaMetrics, raw samples / pipeline, default policy (samples 15d + 5-minute tier 90d + hourly tier 365d = total) (×) |\n|---|---|\n")
	table.WriteString("\n| data shape | samples | samples/s, sent → queryable: VictoriaMetrics / pipeline (×) | bytes a sample: VictoriaMetrics / pipeline's content / on disk, no VACUUM / after VACUUM FULL (on disk × VictoriaMetrics) |\n|---|---|---|---|\n")
	var (
		series    []simSeries // of the last shape generated: its noisy twin adds noise to it
		generated string
	)
	for _, shape := range []struct {
		name       string
		span, step time.Duration
		rounds     int
		noisy      bool
	}{
		{"2h", 2 * time.Hour, 10 * time.Second, 2, false},
		{"2h-noisy", 2 * time.Hour, 10 * time.Second, 2, true},
		{"7d", 7 * 24 * time.Hour, 30 * time.Second, 1, false},
		{"7d-noisy", 7 * 24 * time.Hour, 30 * time.Second, 1, true},
	} {
		if only := os.Getenv("TELEMETRY_BENCH_SHAPE"); only != "" && only != shape.name && only+"-noisy" != shape.name {
			continue
		}
		if at := fmt.Sprint(shape.span, shape.step); !shape.noisy || generated != at {
			series, generated = simulatedSeries(b, time.Now(), shape.span, shape.step), at // a week takes ~10 minutes
		}
		if shape.noisy {
			addNoise(series)
		}
		payloads, total := scrapePayloads(b, series)
		var vm, ours result
		var tiers tierBytes
		for range shape.rounds { // alternate, keeping each one's best rate: the machine is noisy
			rate, size := victoriaMetricsStorage(b, vmBin, payloads, total)
			vm = result{rate: max(vm.rate, rate), bytes: float64(size) / float64(total)}
			st := pipelineStorage(b, payloads, total)
			tiers = st.tiers
			ours = result{rate: max(ours.rate, st.rate), bytes: float64(st.onDisk) / float64(total),
				content: float64(st.content) / float64(total), vacuumed: float64(st.vacuumed) / float64(total)}
		}
		noise := ""
		if shape.noisy {
			noise = ", with noise"
		}
		fmt.Fprintf(&table, "| %s every %s%s (Debian's VictoriaMetrics %s) | %d | %.0f / %.0f (%.2f×) | %.2f / %.2f / %.2f / %.2f (%.2f×) |\n",
			shape.span, shape.step, noise, victoriaMetricsVersion(vmBin), total, vm.rate, ours.rate, ours.rate/vm.rate,
			vm.bytes, ours.content, ours.bytes, ours.vacuumed, ours.bytes/vm.bytes)
		// A year of a series, as each keeps it: its bytes a day here, times the days kept —
		// from a shape of days, not hours: a day's row of hourly buckets costs about what
		// two hours' does.
		days := shape.span.Hours() / 24
		if days < 1 {
			continue
		}
		perSeriesDay := func(bytes float64) float64 { return bytes / float64(len(series)) / days }
		vmYear := perSeriesDay(vm.bytes*float64(total)) * 365
		raw, fine, coarse := perSeriesDay(ours.bytes*float64(total))*15, perSeriesDay(float64(tiers.fine))*90, perSeriesDay(float64(tiers.coarse))*365
		fmt.Fprintf(&year, "| %s every %s%s | %.0f / %.0f + %.0f + %.0f = %.0f (%.2f×) |\n", shape.span, shape.step, noise,
			vmYear, raw, fine, coarse, raw+fine+coarse, (raw+fine+coarse)/vmYear)
	}
	fmt.Print(table.String())
	fmt.Print(year.String())
}

// scrapePayloads turns series into remote_write requests as Prometheus sends them: by
// scrape, 2,000 samples a request.
func scrapePayloads(b *testing.B, series []simSeries) ([][]byte, int64) {
	labels := make([][]prompb.Label, len(series))
	for i, s := range series {
		for name, value := range s.labels {
			labels[i] = append(labels[i], prompb.Label{Name: string(name), Value: string(value)})
		}
		sort.Slice(labels[i], func(x, y int) bool { return labels[i][x].Name < labels[i][y].Name })
	}
	var (
		payloads [][]byte
		wr       prompb.WriteRequest
		total    int64
	)
	flush := func() {
		payloads = append(payloads, apptest.RemoteWriteBodyOf(b, &wr))
		wr.Timeseries = wr.Timeseries[:0]
	}
	for i := range series[0].ts {
		for k, s := range series {
			wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: labels[k],
				Samples: []prompb.Sample{{Timestamp: s.ts[i], Value: s.vs[i]}}})
			total++
			if len(wr.Timeseries) == samplesPerRequest {
				flush()
			}
		}
	}
	if len(wr.Timeseries) > 0 {
		flush()
	}
	return payloads, total
}

// victoriaMetricsStorage returns VictoriaMetrics' ingest rate and its bytes on disk.
func victoriaMetricsStorage(b *testing.B, bin string, payloads [][]byte, total int64) (float64, int64) {
	vm := startVictoriaMetrics(b, bin)
	start := time.Now()
	sendAll(b, vm.base+"/api/v1/write", payloads)
	done := waitQueryable(b, "VictoriaMetrics", total, vm.count)
	byDir := vm.mergedSizes(b)
	return float64(total) / done.Sub(start).Seconds(), byDir["data"] + byDir["indexdb"]
}

// storageResult is what the pipeline's store holds once every window is sealed.
type storageResult struct {
	rate                      float64 // samples/s, sent → queryable
	content, onDisk, vacuumed int64   // bytes: the chunks' data, every table as it is, after VACUUM FULL
	tiers                     tierBytes
}

// tierBytes is what the rollups table takes (after VACUUM FULL) for each tier, shared out
// by the bytes of its rows.
type tierBytes struct{ fine, coarse int64 }

// pipelineStorage runs mode all into a fresh PostgreSQL database and measures the store once
// every window is sealed. The workload recorder is off: its sums are measured apart
// (BenchmarkMonthOfUsage), and its passes would land on the ingestion's clock by chance.
func pipelineStorage(b *testing.B, payloads [][]byte, total int64) storageResult {
	dbURL := sqlstoretest.PostgresURL(b)
	sqlstoretest.Autovacuum(b)
	p, base, count := spawnCounted(b, "storage", "--remote-write", "--database-url="+dbURL, "--log-level=warn", "--retention=0",
		"--workload-interval=0")
	start := time.Now()
	sendAll(b, base+"/api/v1/write", payloads)
	done := waitQueryable(b, "pipeline", total, count)
	p.Signal(syscall.SIGTERM)
	<-p.Done
	r := storageResult{rate: float64(total) / done.Sub(start).Seconds()}

	ctx := context.Background()
	store, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
	require.NoError(b, err)
	st, err := store.Seal(ctx)
	require.NoError(b, err)
	require.NoError(b, store.Close())
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(b, err)
	defer conn.Close(ctx)
	tablesSize := func() (int64, []string) {
		var size int64
		var tables []string
		rows, err := conn.Query(ctx, `SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 2 DESC`)
		require.NoError(b, err)
		for rows.Next() {
			var name string
			var n int64
			require.NoError(b, rows.Scan(&name, &n))
			size += n
			tables = append(tables, fmt.Sprintf("%s %d kB", name, n/1024))
		}
		require.NoError(b, rows.Err())
		return size, tables
	}
	var asFound []string
	r.onDisk, asFound = tablesSize()
	_, err = conn.Exec(ctx, "VACUUM FULL ANALYZE")
	require.NoError(b, err)
	var tables []string
	r.vacuumed, tables = tablesSize()
	var chunks, stored, heap, indexes int64
	require.NoError(b, conn.QueryRow(ctx, `SELECT count(*), sum(octet_length(data)), sum(pg_column_size(data)),
		(SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree('chunks')),
		(SELECT sum(pg_indexes_size(relid)) FROM pg_partition_tree('chunks')) FROM chunks`).Scan(&chunks, &r.content, &stored, &heap, &indexes))
	require.NoError(b, conn.QueryRow(ctx, `SELECT
		coalesce(pg_total_relation_size('rollups') * sum(pg_column_size(data)) FILTER (WHERE step = 300) / nullif(sum(pg_column_size(data)), 0), 0),
		coalesce(pg_total_relation_size('rollups') * sum(pg_column_size(data)) FILTER (WHERE step = 3600) / nullif(sum(pg_column_size(data)), 0), 0)
		FROM rollups`).Scan(&r.tiers.fine, &r.tiers.coarse))
	var tierRows []string
	rows, err := conn.Query(ctx, `SELECT step, count(*), sum(octet_length(data)), sum(pg_column_size(data)) FROM rollups GROUP BY step ORDER BY step`)
	require.NoError(b, err)
	for rows.Next() {
		var step, n, raw, stored int64
		require.NoError(b, rows.Scan(&step, &n, &raw, &stored))
		tierRows = append(tierRows, fmt.Sprintf("%ds: %d rows, %d kB compressed to %d kB", step, n, raw/1024, stored/1024))
	}
	require.NoError(b, rows.Err())
	fmt.Printf("pipeline: %s; Seal at the end sealed %d windows; tables as found: %s; after VACUUM FULL: %s; chunks: %d rows, %d kB of blocks compressed to %d kB, heap %d kB, indexes %d kB; tiers: %s\n",
		done.Sub(start).Round(time.Millisecond), st.Sealed, strings.Join(asFound, ", "), strings.Join(tables, ", "), chunks, r.content/1024, stored/1024, heap/1024, indexes/1024, strings.Join(tierRows, ", "))
	return r
}
