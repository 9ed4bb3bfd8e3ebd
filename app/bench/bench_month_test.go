package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// BenchmarkPromQLMonth times a month-long PromQL panel against Prometheus on the same data:
// 30 days of a fleet's ten metrics every 10 s (TELEMETRY_BENCH_MONTH_GPUS GPUs, 8 a host;
// 31 by default, 247 for the bundled fleet's size, some 70 minutes to load), written into
// PostgreSQL through the store and sealed, and into a TSDB block by Prometheus' own block
// writer, which Debian's prometheus then serves. Each panel runs with 4 clients on both;
// their answers are compared first.
//
//	TELEMETRY_BENCH_MONTH=1 go test -run '^$' -bench PromQLMonth -benchtime 1x -timeout 120m ./app/bench
func BenchmarkPromQLMonth(b *testing.B) {
	if os.Getenv("TELEMETRY_BENCH_MONTH") == "" {
		b.Skip("loads a month of samples: TELEMETRY_BENCH_MONTH=1 (make bench-month)")
	}
	promBin, err := exec.LookPath("prometheus")
	require.NoError(b, err, "prometheus is not installed (make services installs Debian's)")
	n := 31
	if s := os.Getenv("TELEMETRY_BENCH_MONTH_GPUS"); s != "" {
		n, err = strconv.Atoi(s)
		require.NoError(b, err, "TELEMETRY_BENCH_MONTH_GPUS")
	}
	const days, interval = 30, 10 * time.Second
	ticks := int(days * 24 * time.Hour / interval)
	end := time.Now().Truncate(time.Hour)
	start := end.Add(-days * 24 * time.Hour)
	// Off the second, as scrapes are: no sample on a bucket's edge, where Prometheus 2's
	// closed windows, the engine's left-open ones and the tiers' buckets would disagree.
	at := func(tick int) time.Time { return start.Add(time.Duration(tick)*interval + 1234*time.Millisecond) }
	gpus := make([]telemetry.GPU, n)
	for i := range gpus {
		gpus[i] = telemetry.GPU{UUID: fmt.Sprintf("GPU-month-%04d", i), Hostname: fmt.Sprintf("month-%03d", i/8), Index: i % 8,
			Device: fmt.Sprintf("nvidia%d", i%8), ModelName: "NVIDIA H100 80GB HBM3"}
	}
	metrics := []string{"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_MEMORY_TEMP",
		"DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
		"DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL"}
	value := func(tick, gpu, metric int) float64 { // a daily cycle and a little noise, per GPU and metric
		day := math.Sin(2 * math.Pi * float64(tick) / 8640)
		noise := rand.New(rand.NewPCG(uint64(tick), uint64(gpu*16+metric))).Float64()
		return math.Round((50+40*day)*float64(metric+1) + noise*5)
	}

	// Prometheus: remote-written an hour at a time, in order, then left to compact its
	// two-hour blocks as one that had scraped the month would have.
	promDir := b.TempDir()
	// Two-day head blocks: with Prometheus' two hours, a month sent in minutes costs it 700
	// compactions, each a second, while a month scraped spreads them over the month. Its
	// query then reads fewer, larger blocks, which if anything favours it.
	prom := startPrometheusOn(b, promBin, promDir, "--storage.tsdb.retention.time=10y",
		"--storage.tsdb.min-block-duration=48h", "--storage.tsdb.max-block-duration=480h")
	loadStart := time.Now()
	series := make([][]prompb.Label, n*len(metrics))
	for gi, g := range gpus {
		for mi, m := range metrics {
			series[gi*len(metrics)+mi] = []prompb.Label{{Name: "Hostname", Value: g.Hostname}, {Name: "UUID", Value: g.UUID},
				{Name: "__name__", Value: m}, {Name: "device", Value: g.Device}, {Name: "gpu", Value: strconv.Itoa(g.Index)},
				{Name: "modelName", Value: g.ModelName}}
		}
	}
	for first := 0; first < ticks; first += 360 {
		var payloads [][]byte
		var wr prompb.WriteRequest
		for k, ls := range series {
			ts := prompb.TimeSeries{Labels: ls}
			for tick := first; tick < min(first+360, ticks); tick++ {
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at(tick).UnixMilli(), Value: value(tick, k/len(metrics), k%len(metrics))})
			}
			wr.Timeseries = append(wr.Timeseries, ts)
			if len(wr.Timeseries) == 5 || k == len(series)-1 { // 1,800 samples a request
				payloads = append(payloads, apptest.RemoteWriteBodyOf(b, &wr))
				wr.Timeseries = wr.Timeseries[:0]
			}
		}
		sendAllFrom(b, "http://"+prom+"/api/v1/write", payloads, 2) // a series once a call: in order
	}
	waitPrometheusCompacted(b, prom)
	promLoad := time.Since(loadStart)

	// The pipeline: the store as collectors write it, an hour a batch, then sealed as the
	// compactor does once the windows are old enough.
	ctx := context.Background()
	dbURL := sqlstoretest.PostgresURL(b)
	store, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
	require.NoError(b, err)
	loadStart = time.Now()
	for first := 0; first < ticks; first += 360 {
		batch := telemetry.Batch{ID: fmt.Sprint("month-", first), GPUs: gpus}
		for tick := first; tick < min(first+360, ticks); tick++ {
			t := at(tick)
			for gi, g := range gpus {
				for mi, m := range metrics {
					batch.Samples = append(batch.Samples, telemetry.Sample{GPU: g.UUID, Metric: m, Time: t, Value: value(tick, gi, mi)})
				}
			}
		}
		_, err := store.WriteBatch(ctx, batch)
		require.NoError(b, err)
	}
	_, err = store.Seal(ctx)
	require.NoError(b, err)
	require.NoError(b, store.Close())
	ourLoad := time.Since(loadStart)
	total := ticks * n * len(metrics)
	fmt.Printf("\nloaded %d samples: Prometheus (remote-written, compacted) %s, the store (written and sealed) %s\n", total,
		promLoad.Round(time.Second), ourLoad.Round(time.Second))

	api := apptest.Spawn(b, "api-month", "--mode=api", "--database-url="+dbURL, "--log-level=warn")
	defer func() { api.Signal(syscall.SIGTERM); <-api.Done }()
	apptest.WaitUp(b, "http://"+api.Addr)

	panels := []struct {
		name, query string
		step        time.Duration
	}{
		{"average utilisation by host, hourly means, 30 d, step 1h", `avg by (Hostname) (avg_over_time(DCGM_FI_DEV_GPU_UTIL[1h]))`, time.Hour},
		{"the fleet's power, daily means, 30 d, step 1d", `sum(avg_over_time(DCGM_FI_DEV_POWER_USAGE[1d]))`, 24 * time.Hour},
		{"hottest GPU by host, hourly maxima, 30 d, step 1h", `max by (Hostname) (max_over_time(DCGM_FI_DEV_GPU_TEMP[1h]))`, time.Hour},
	}
	fmt.Printf("\n| PromQL panel (%d GPUs, %d samples, 4 clients) | Prometheus p50 / p99 | pipeline p50 / p99 | p99 × Prometheus |\n|---|---|---|---|\n", n, total)
	for _, pn := range panels {
		q := url.Values{"query": {pn.query}, "start": {strconv.FormatInt(start.Add(24*time.Hour).Unix(), 10)},
			"end": {strconv.FormatInt(end.Unix(), 10)}, "step": {strconv.Itoa(int(pn.step.Seconds()))}}
		want := queryMatrix(b, "http://"+prom+"/api/v1/query_range", q)
		got := queryMatrix(b, "http://"+api.Addr+"/prometheus/api/v1/query_range", q)
		require.NotEmpty(b, want, pn.query)
		sameMatrix(b, pn.query, want, got)
		path := func(prefix string) func(*rand.Rand) string {
			return func(*rand.Rand) string { return prefix + "/api/v1/query_range?" + q.Encode() }
		}
		hammer(b, prom, path(""), 4, 2*time.Second) // warm up
		promP50, promP99, _ := hammer(b, prom, path(""), 4, 20*time.Second)
		hammer(b, api.Addr, path("/prometheus"), 4, 2*time.Second)
		ourP50, ourP99, _ := hammer(b, api.Addr, path("/prometheus"), 4, 20*time.Second)
		fmt.Printf("| %s | %.1f / %.1f ms | %.1f / %.1f ms | %.3f |\n", pn.name, ms(promP50), ms(promP99), ms(ourP50), ms(ourP99),
			float64(ourP99)/float64(promP99))
	}
}

// waitPrometheusCompacted waits until Prometheus has compacted no block for 30 seconds.
func waitPrometheusCompacted(b *testing.B, addr string) {
	deadline := time.Now().Add(30 * time.Minute)
	last, since := -1.0, time.Now()
	for time.Now().Before(deadline) {
		c := apptest.MetricValue(b, apptest.ScrapeMetrics(b, addr), "prometheus_tsdb_compactions_total")
		if c != last {
			last, since = c, time.Now()
		} else if time.Since(since) > 30*time.Second {
			return
		}
		time.Sleep(2 * time.Second)
	}
	b.Fatal("Prometheus still compacting after 30 minutes")
}

// matrix is a range query's answer: each series' values by its labels.
type matrix map[string][][2]string

func queryMatrix(b *testing.B, endpoint string, q url.Values) matrix {
	var body struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Values [][2]any
			}
		}
	}
	require.NoError(b, apptest.GetJSON(&http.Client{Timeout: 5 * time.Minute}, endpoint+"?"+q.Encode(), &body))
	require.Equal(b, "success", body.Status, "%s: %s", endpoint, body.Error)
	out := matrix{}
	for _, s := range body.Data.Result {
		key := labels.FromMap(s.Metric).String()
		for _, v := range s.Values {
			out[key] = append(out[key], [2]string{fmt.Sprint(v[0]), v[1].(string)})
		}
	}
	return out
}

// sameMatrix fails unless got has want's series, times and values (to 1e-9 relative).
func sameMatrix(b *testing.B, query string, want, got matrix) {
	require.Equal(b, len(want), len(got), "%s: series", query)
	for k, w := range want {
		g := got[k]
		require.Equal(b, len(w), len(g), "%s: points of %s", query, k)
		for i := range w {
			require.Equal(b, w[i][0], g[i][0], "%s: time of %s", query, k)
			wv, err1 := strconv.ParseFloat(w[i][1], 64)
			gv, err2 := strconv.ParseFloat(g[i][1], 64)
			require.NoError(b, errors.Join(err1, err2))
			require.InEpsilon(b, wv, gv, 1e-9, "%s: value of %s at %s", query, k, w[i][0])
		}
	}
}
