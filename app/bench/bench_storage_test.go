package bench

import (
	"context"
	"fmt"
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

// benchStorage is make bench's scenario against VictoriaMetrics on the data the storage
// target is set on: the bundled fleet as the simulator moves it, scraped every 10 s for two
// hours (1,778,400 samples), sent as Prometheus remote_write sends a scrape's samples, to
// each in the same run. Each is timed until every sample is queryable, then measured on
// disk: VictoriaMetrics after a forced merge (its samples and index), the pipeline after its
// compactor has sealed every window and VACUUM FULL (every table, index and TOAST table of
// the store).
func benchStorage(b *testing.B) {
	vmBin, err := exec.LookPath("victoria-metrics")
	require.NoError(b, err, "victoria-metrics is not installed (make bench installs Debian's)")
	series := simulatedSeries(b, time.Now(), 2*time.Hour, 10*time.Second)
	payloads, total := scrapePayloads(b, series)
	type result struct {
		rate, bytes float64
	}
	var vm, ours result
	for range 2 { // alternate, keeping each one's best rate: the machine is noisy
		rate, size := victoriaMetricsStorage(b, vmBin, payloads, total)
		vm = result{max(vm.rate, rate), float64(size) / float64(total)}
		rate, size = pipelineStorage(b, payloads, total)
		ours = result{max(ours.rate, rate), float64(size) / float64(total)}
	}
	fmt.Printf("\n| same fleet data, %d samples by remote_write | samples/s, sent → queryable | × VictoriaMetrics | bytes a sample on disk | × VictoriaMetrics |\n|---|---|---|---|---|\n", total)
	fmt.Printf("| VictoriaMetrics (Debian's %s) | %.0f | 1.00 | %.2f | 1.00 |\n", victoriaMetricsVersion(vmBin), vm.rate, vm.bytes)
	fmt.Printf("| pipeline, mode all, PostgreSQL | %.0f | %.2f | %.2f | %.2f |\n", ours.rate, ours.rate/vm.rate, ours.bytes, ours.bytes/vm.bytes)
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

// pipelineStorage returns mode all's ingest rate into a fresh PostgreSQL database and the
// store's bytes there once every window is sealed.
func pipelineStorage(b *testing.B, payloads [][]byte, total int64) (float64, int64) {
	dbURL := sqlstoretest.PostgresURL(b)
	p, base, count := spawnCounted(b, "storage", "--remote-write", "--database-url="+dbURL, "--log-level=warn")
	start := time.Now()
	sendAll(b, base+"/api/v1/write", payloads)
	done := waitQueryable(b, "pipeline", total, count)
	p.Signal(syscall.SIGTERM)
	<-p.Done
	rate := float64(total) / done.Sub(start).Seconds()

	ctx := context.Background()
	store, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
	require.NoError(b, err)
	st, err := store.Seal(ctx)
	require.NoError(b, err)
	require.NoError(b, store.Close())
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(b, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "VACUUM FULL ANALYZE")
	require.NoError(b, err)
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
	var chunks, raw, stored, heap, indexes int64
	require.NoError(b, conn.QueryRow(ctx, `SELECT count(*), sum(octet_length(data)), sum(pg_column_size(data)),
		(SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree('chunks')),
		(SELECT sum(pg_indexes_size(relid)) FROM pg_partition_tree('chunks')) FROM chunks`).Scan(&chunks, &raw, &stored, &heap, &indexes))
	fmt.Printf("pipeline: %s; Seal at the end sealed %d windows; tables: %s; chunks: %d rows, %d kB of blocks compressed to %d kB, heap %d kB, indexes %d kB\n",
		done.Sub(start).Round(time.Millisecond), st.Sealed, strings.Join(tables, ", "), chunks, raw/1024, stored/1024, heap/1024, indexes/1024)
	return rate, size
}
