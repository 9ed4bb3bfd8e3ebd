package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// BenchmarkYear fast-forwards a year of a small fleet — TELEMETRY_BENCH_YEAR_GPUS (10) of
// the bundled fleet's GPUs, their ten fields every 10 s, TELEMETRY_BENCH_YEAR_DAYS (365)
// days ending now — through remote_write into mode all on PostgreSQL with the production
// defaults (samples 15 d, the 5-minute tier 90 d, the hourly one 2 y; compaction and
// retention every minute, counted back from the newest sample as Prometheus counts), and
// into VictoriaMetrics keeping every sample. It checks what the store holds at the end and
// compares the bytes each keeps. Two data shapes (TELEMETRY_BENCH_YEAR_SHAPES): the
// simulator's day repeated — its gauges repeat every five minutes — and the same with
// noise, as a real fleet's readings.
//
//	TELEMETRY_BENCH_YEAR=1 go test -run '^$' -bench BenchmarkYear -benchtime 1x -timeout 120m ./app/bench
func BenchmarkYear(b *testing.B) {
	if os.Getenv("TELEMETRY_BENCH_YEAR") == "" {
		b.Skip("fast-forwards a year of samples: TELEMETRY_BENCH_YEAR=1 (make bench-year)")
	}
	vmBin, err := exec.LookPath("victoria-metrics")
	require.NoError(b, err, "victoria-metrics is not installed (make services installs Debian's)")
	gpus, days := envInt("TELEMETRY_BENCH_YEAR_GPUS", 10), envInt("TELEMETRY_BENCH_YEAR_DAYS", 365)
	const step = 10 * time.Second
	end := time.Now().Truncate(time.Hour)
	start := end.Add(-time.Duration(days) * 24 * time.Hour)
	day := simulatedFleet(b, gpus, start.Add(24*time.Hour), 24*time.Hour, step)

	var table strings.Builder
	table.WriteString("\n| data shape | samples | samples/s, sent → stored: VictoriaMetrics / pipeline | bytes: VictoriaMetrics (data + indexdb) / pipeline: samples + 5-minute tier + hourly tier + the rest = total, as found (× VictoriaMetrics) | the store holds: samples, 5-minute tier, hourly tier (days) |\n|---|---|---|---|---|\n")
	for _, shape := range strings.Split(cmp.Or(os.Getenv("TELEMETRY_BENCH_YEAR_SHAPES"), "smooth,noisy"), ",") {
		payloads, total := yearPayloads(b, day, days, shape == "noisy")
		vmRate, vmBytes := victoriaMetricsYear(b, vmBin, payloads, total, days)
		ours := pipelineYear(b, payloads, total)
		payloads = nil
		runtime.GC()

		newest := end.Add(-step)
		heldDays := func(oldest time.Time) float64 { return newest.Sub(oldest).Hours() / 24 }
		// What the defaults promise: samples back 15 days (a chunk holding a sample past the
		// cutoff stays whole: up to a window more), the 5-minute tier 90 days (its rows are
		// days), the hourly tier the whole span (its rows are weeks).
		require.InDelta(b, min(15, days), heldDays(ours.oldestRaw), 0.2, "days of samples kept")
		require.InDelta(b, min(90, days), heldDays(ours.oldestFine), 1.01, "days of the 5-minute tier kept")
		require.GreaterOrEqual(b, heldDays(ours.oldestCoarse), float64(days)-0.01, "days of the hourly tier kept")
		kept := ours.raw + ours.fine + ours.coarse + ours.rest
		fmt.Fprintf(&table, "| %d GPUs' fields every %s for %d days, %s | %d | %.0f / %.0f (%.2f×) | %s / %s + %s + %s + %s = %s (%.2f×) | %.1f, %.1f, %.1f |\n",
			gpus, step, days, shape, total, vmRate, ours.rate, ours.rate/vmRate, mb(vmBytes), mb(ours.raw), mb(ours.fine), mb(ours.coarse),
			mb(ours.rest), mb(kept), float64(kept)/float64(vmBytes), heldDays(ours.oldestRaw), heldDays(ours.oldestFine), heldDays(ours.oldestCoarse))
	}
	fmt.Print(table.String())
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// yearPayloads extends the simulated day over days, an hour of every series a request (a
// sender catching up sends many samples a series): gauges repeat the day's values,
// counters go on growing at the day's rate. With noise, each gauge's reading moves as
// addNoise moves them, afresh each sample rather than as a walk, which over a year would
// wander off.
func yearPayloads(b *testing.B, day []simSeries, days int, noisy bool) ([][]byte, int64) {
	perDay := len(day[0].ts)
	stepMs := day[0].ts[1] - day[0].ts[0]
	perHour := int(time.Hour.Milliseconds() / stepMs)
	labels := make([][]prompb.Label, len(day))
	grows := make([]float64, len(day)) // a counter's increase a day, 0 for a gauge
	whole := make([]bool, len(day))
	for k, s := range day {
		require.Len(b, s.ts, perDay, "a series of the simulated day misses samples")
		for name, value := range s.labels {
			labels[k] = append(labels[k], prompb.Label{Name: string(name), Value: string(value)})
		}
		sort.Slice(labels[k], func(x, y int) bool { return labels[k][x].Name < labels[k][y].Name })
		counter, isWhole := s.vs[perDay-1] > s.vs[0], true
		for i, v := range s.vs {
			counter = counter && (i == 0 || v >= s.vs[i-1])
			isWhole = isWhole && v == math.Trunc(v)
		}
		if counter {
			grows[k] = s.vs[perDay-1] - s.vs[0] + (s.vs[1] - s.vs[0])
		}
		whole[k] = isWhole
	}
	hours := days * 24
	payloads := make([][]byte, hours)
	var next sync.Mutex
	h := 0
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var wr prompb.WriteRequest
			for {
				next.Lock()
				hour := h
				h++
				next.Unlock()
				if hour >= hours {
					return
				}
				wr.Timeseries = wr.Timeseries[:0]
				for k, s := range day {
					rng := rand.New(rand.NewPCG(uint64(hour), uint64(k)))
					samples := make([]prompb.Sample, perHour)
					for j := range samples {
						i := hour*perHour + j
						v := s.vs[i%perDay] + float64(i/perDay)*grows[k]
						if noisy && grows[k] == 0 {
							v = jitter(v, whole[k], rng)
						}
						samples[j] = prompb.Sample{Timestamp: s.ts[0] + int64(i)*stepMs, Value: v}
					}
					wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: labels[k], Samples: samples})
				}
				payloads[hour] = apptest.RemoteWriteBodyOf(b, &wr)
			}
		})
	}
	wg.Wait()
	return payloads, int64(hours) * int64(perHour) * int64(len(day))
}

// jitter is v as a live reading of it: a whole number off by a few units (±2 % at most
// ~2σ), a fraction by 1 % of itself, rounded as DCGM reports it.
func jitter(v float64, whole bool, rng *rand.Rand) float64 {
	if whole {
		return math.Max(0, v+math.Round(rng.NormFloat64()*math.Max(1, math.Abs(v)*0.02)/2))
	}
	n := v * (1 + rng.NormFloat64()*0.01)
	if math.Abs(v) >= 1 {
		return math.Round(n*1000) / 1000
	}
	return math.Round(n*1e6) / 1e6
}

// victoriaMetricsYear sends payloads to VictoriaMetrics and returns its rate, sent → every
// sample queryable, and its data and index directories' bytes after a forced merge.
func victoriaMetricsYear(b *testing.B, bin string, payloads [][]byte, total int64, days int) (float64, int64) {
	vm := startVictoriaMetrics(b, bin)
	start := time.Now()
	sendAll(b, vm.base+"/api/v1/write", payloads)
	var n int64
	require.Eventually(b, func() bool {
		var err error
		n, err = vm.countOver(days + 1)
		return err == nil && n >= total
	}, 20*time.Minute, 2*time.Second, "VictoriaMetrics: every sample queryable")
	elapsed := time.Since(start)
	require.Equal(b, total, n)
	byDir := vm.mergedSizes(b)
	fmt.Printf("VictoriaMetrics: %d samples queryable after %s\n", total, elapsed.Round(time.Millisecond))
	return float64(total) / elapsed.Seconds(), byDir["data"] + byDir["indexdb"]
}

// yearStore is what the pipeline's store keeps at the end of the year.
type yearStore struct {
	rate                                float64 // samples/s, sent → stored
	raw, fine, coarse, rest             int64   // bytes as found: chunks, each tier's share of rollups, every other table
	oldestRaw, oldestFine, oldestCoarse time.Time
}

// pipelineYear runs mode all with the production defaults into a fresh database, sends
// payloads, waits until every sample is stored, compaction has caught up and two retention
// passes have run since, and
// measures the tables as a user finds them (no VACUUM). The workload recorder is off: its
// sums are measured apart (BenchmarkMonthOfUsage).
func pipelineYear(b *testing.B, payloads [][]byte, total int64) yearStore {
	dbURL := sqlstoretest.PostgresURL(b)
	sqlstoretest.Autovacuum(b)
	p, base, _ := spawnCounted(b, "year", "--remote-write", "--database-url="+dbURL, "--log-level=warn", "--workload-interval=0")
	counter := func(name string) float64 {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil || families[name] == nil {
			return -1
		}
		sum := 0.0
		for _, m := range families[name].GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		return sum
	}
	start := time.Now()
	sendAll(b, base+"/api/v1/write", payloads)
	require.Eventually(b, func() bool { return counter("telemetry_samples_stored_total") >= float64(total) },
		30*time.Minute, time.Second, "pipeline: every sample stored")
	r := yearStore{rate: float64(total) / time.Since(start).Seconds()}
	fmt.Printf("pipeline: %d samples stored after %s\n", total, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(b, err)
	defer conn.Close(ctx)
	// Compaction catches up with the backlog (a window a device and transaction), then
	// retention passes over what it sealed.
	caughtUp := time.Now()
	require.Eventually(b, func() bool {
		var behind int64
		err := conn.QueryRow(ctx, `SELECT count(*) FROM chunks_heads WHERE max_ts < (SELECT max(max_ts) FROM chunks_heads) - interval '4 hours'`).Scan(&behind)
		return err == nil && behind == 0
	}, 60*time.Minute, 5*time.Second, "pipeline: compaction caught up")
	fmt.Printf("pipeline: compaction caught up %s after the last sample was stored\n", time.Since(caughtUp).Round(time.Second))
	passes := counter("telemetry_retention_passes_total")
	require.Eventually(b, func() bool { return counter("telemetry_retention_passes_total") >= passes+2 },
		5*time.Minute, time.Second, "pipeline: retention passes after the last sample")
	p.Signal(syscall.SIGTERM)
	<-p.Done

	var all, rollups int64
	require.NoError(b, conn.QueryRow(ctx, `SELECT
		(SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind = 'r'),
		(SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('chunks') WHERE isleaf),
		pg_total_relation_size('rollups')`).Scan(&all, &r.raw, &rollups))
	var oldestFine, oldestCoarse *time.Time
	require.NoError(b, conn.QueryRow(ctx, `SELECT
		coalesce($1 * sum(pg_column_size(data)) FILTER (WHERE step = 300) / nullif(sum(pg_column_size(data)), 0), 0),
		min(start) FILTER (WHERE step = 300), min(start) FILTER (WHERE step = 3600), (SELECT min(min_ts) FROM chunks) FROM rollups`,
		rollups).Scan(&r.fine, &oldestFine, &oldestCoarse, &r.oldestRaw))
	require.NotNil(b, oldestFine, "rows of the 5-minute tier")
	require.NotNil(b, oldestCoarse, "rows of the hourly tier")
	r.oldestFine, r.oldestCoarse = *oldestFine, *oldestCoarse
	r.coarse, r.rest = rollups-r.fine, all-r.raw-rollups
	var tables []string
	rows, err := conn.Query(ctx, `SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 2 DESC LIMIT 8`)
	require.NoError(b, err)
	for rows.Next() {
		var name string
		var n int64
		require.NoError(b, rows.Scan(&name, &n))
		tables = append(tables, fmt.Sprintf("%s %d kB", name, n/1024))
	}
	require.NoError(b, rows.Err())
	fmt.Printf("pipeline: tables as found: %s\n", strings.Join(tables, ", "))
	return r
}
