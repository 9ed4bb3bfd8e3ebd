package bench

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/csvsource"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
	"github.com/telemetry-pipeline/telemetry-pipeline/config"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// BenchmarkAPI loads 10 million samples into PostgreSQL (once: the database
// telemetry_bench is kept between runs), starts the API as its own process and measures it
// under concurrent load from this process. Run it with make bench-api;
// TELEMETRY_BENCH_ONLY=latest (a part of a scenario's name) runs one scenario.
func BenchmarkAPI(b *testing.B) {
	if os.Getenv("TELEMETRY_BENCH_API") == "" {
		b.Skip("loads 10M samples: run make bench-api")
	}
	const (
		samplesWanted = 10_000_000
		step          = 10 * time.Second // between two readings of one GPU
		concurrency   = 8
		warmup        = 2 * time.Second
		duration      = 8 * time.Second
	)
	gpus, metrics := bundledFleet(b)
	perTick := len(gpus) * len(metrics)
	ticks := (samplesWanted + perTick - 1) / perTick
	t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	span := time.Duration(ticks-1) * step

	dbURL := benchDatabase(b)
	load(b, dbURL, gpus, metrics, t0, ticks, step)

	api := apptest.Spawn(b, "api-bench", "--mode=api", "--database-url="+dbURL, "--log-level=warn")
	apptest.WaitUp(b, "http://"+api.Addr)

	from := func(r *rand.Rand) time.Time { return t0.Add(time.Duration(r.Int64N(int64(span - time.Hour)))) }
	gpu := func(r *rand.Rand) string { return gpus[r.IntN(len(gpus))].UUID }
	scenarios := []struct {
		name string
		url  func(r *rand.Rand) string
	}{
		{"window query, 1 h, limit 1000", func(r *rand.Rand) string { return hourQuery(gpu(r), from(r), "limit=1000") }},
		{"latest", func(r *rand.Rand) string { return "/api/v1/gpus/" + gpu(r) + "/latest" }},
		{"GPU list (247)", func(*rand.Rand) string { return "/api/v1/gpus" }},
		{"aggregation, 1 h, step=1m", func(r *rand.Rand) string { return hourQuery(gpu(r), from(r), "step=1m&agg=avg") }},
		// Every metric of a GPU over a day, by minute: the whole 11.2 h the store holds.
		{"aggregation, 24 h, all metrics, step=1m", func(r *rand.Rand) string {
			return windowQuery(gpu(r), t0.Add(-time.Duration(r.Int64N(int64(time.Hour)))), 24*time.Hour, "step=1m&agg=avg")
		}},
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n| Query (%d samples, %d concurrent clients) | p50 | p99 | requests/s | CPU a request: API / PostgreSQL / client |\n|---|---|---|---|---|\n",
		ticks*perTick, concurrency)
	only := os.Getenv("TELEMETRY_BENCH_ONLY") // a part of a scenario's name runs that one
	for _, sc := range scenarios {
		if !strings.Contains(sc.name, only) {
			continue
		}
		hammer(b, api.Addr, sc.url, concurrency, warmup) // caches filled, connections open
		before := readCPU(api.Cmd.Process.Pid)
		p50, p99, rps := hammer(b, api.Addr, sc.url, concurrency, duration)
		used := readCPU(api.Cmd.Process.Pid).since(before)
		requests := rps * duration.Seconds()
		fmt.Fprintf(&table, "| %s | %.2f ms | %.2f ms | %.0f | %.3f / %.3f / %.3f ms |\n", sc.name, ms(p50), ms(p99), rps,
			ms(used.api)/requests, ms(used.postgres)/requests, ms(used.client)/requests)
		b.ReportMetric(rps, strings.ReplaceAll(sc.name, " ", "_")+"-req/s")
	}
	fmt.Print(table.String())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// hourQuery is the path of a query of a GPU's telemetry over the hour from from, with params
// such as limit=1000 or step=1m&agg=avg.
func hourQuery(uuid string, from time.Time, params string) string {
	return windowQuery(uuid, from, time.Hour, params)
}

// windowQuery is hourQuery over any span; params with a step go to the aggregate route.
func windowQuery(uuid string, from time.Time, span time.Duration, params string) string {
	route := "telemetry"
	if strings.Contains(params, "step=") {
		route = "telemetry/aggregate"
	}
	return fmt.Sprintf("/api/v1/gpus/%s/%s?%s&start_time=%s&end_time=%s", uuid, route, params,
		url.QueryEscape(from.Format(time.RFC3339Nano)), url.QueryEscape(from.Add(span).Format(time.RFC3339Nano)))
}

// requestCPU is the CPU time used so far by the API, PostgreSQL's processes on this machine
// and the benchmark itself, read from /proc. On a noisy machine a request's cost in CPU
// is a steadier measure than requests/s.
type requestCPU struct{ api, postgres, client time.Duration }

func readCPU(apiPID int) requestCPU {
	return requestCPU{api: processCPU(apiPID), client: processCPU(os.Getpid()), postgres: postgresCPU()}
}

// postgresCPU is the CPU time used so far by PostgreSQL's processes on this machine.
func postgresCPU() time.Duration {
	var total time.Duration
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if comm, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "comm")); strings.TrimSpace(string(comm)) == "postgres" {
			total += processCPU(pid)
		}
	}
	return total
}

// since returns the CPU used from before until t. A PostgreSQL backend started in between
// counts whole; one that ended in between is not subtracted, since it is not in t.
func (t requestCPU) since(before requestCPU) requestCPU {
	return requestCPU{api: t.api - before.api, postgres: max(t.postgres-before.postgres, 0), client: t.client - before.client}
}

// processCPU returns the user and system time of a process, 0 when it cannot be read.
func processCPU(pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces: utime
	// and stime are the 12th and 13th, in clock ticks of 1/100 s.
	_, rest, _ := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// hammer requests paths from n clients for d and returns latency percentiles and throughput.
func hammer(b *testing.B, addr string, next func(*rand.Rand) string, n int, d time.Duration) (p50, p99 time.Duration, rps float64) {
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			c, err := dialBench(addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.conn.Close()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			var mine []time.Duration
			for time.Now().Before(deadline) {
				start := time.Now()
				if err := c.get(next(r)); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lat)
	require.NotEmpty(b, lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], float64(len(lat)) / d.Seconds()
}

// benchClient sends requests one after another over one keep-alive connection, as load
// generators such as wrk do. The client shares two cores with the API and PostgreSQL, and
// net/http's Client hands every request and response between goroutines: per window query
// it took nearly twice the CPU this one does (~0.135 ms against ~0.075).
type benchClient struct {
	conn net.Conn
	r    *bufio.Reader
	host string
}

func dialBench(addr string) (*benchClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	// Pages of 1,000 samples are about 80 kB: read them in large gulps, as a client that
	// downloads telemetry would.
	return &benchClient{conn: conn, r: bufio.NewReaderSize(conn, 128<<10), host: addr}, nil
}

// get requests path and reads the whole answer, which must be a 200.
func (c *benchClient) get(path string) error {
	if _, err := io.WriteString(c.conn, "GET "+path+" HTTP/1.1\r\nHost: "+c.host+"\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	return err
}

// bundledFleet returns the GPUs and metric names of the bundled file.
func bundledFleet(b *testing.B) ([]telemetry.GPU, []string) {
	var gpus []telemetry.GPU
	seen := map[string]bool{}
	var metrics []string
	_, err := csvsource.Bytes("bundled", apptest.BundledCSV, csvsource.Options{}).Scan(context.Background(), func(r telemetry.Reading) error {
		if !seen[r.GPU.UUID] {
			seen[r.GPU.UUID] = true
			gpus = append(gpus, r.GPU)
		}
		if !seen[r.Sample.Metric] {
			seen[r.Sample.Metric] = true
			metrics = append(metrics, r.Sample.Metric)
		}
		return nil
	})
	require.NoError(b, err)
	return gpus, metrics
}

// benchDatabase returns the URL of the benchmark database, creating it when missing.
func benchDatabase(b *testing.B) string {
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	db, err := sql.Open("pgx", admin)
	require.NoError(b, err)
	defer db.Close()
	var exists bool
	require.NoError(b, db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'telemetry_bench')`).Scan(&exists))
	if !exists {
		_, err = db.Exec(`CREATE DATABASE telemetry_bench`)
		require.NoError(b, err)
	}
	u, err := url.Parse(admin)
	require.NoError(b, err)
	u.Path = "/telemetry_bench"
	return u.String()
}

// load writes ticks readings of every metric of every GPU, unless the database holds them.
func load(b *testing.B, dbURL string, gpus []telemetry.GPU, metrics []string, t0 time.Time, ticks int, step time.Duration) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
	require.NoError(b, err)
	defer store.Close()
	// The partitions a collector's pruner keeps at the default retention: the queries plan
	// over them as they would in a cluster (the samples, from 2025, are in the default one).
	retention := config.DefaultRetentionPostgres
	require.NoError(b, store.EnsurePartitions(ctx, sqlstore.PartitionSpan(retention), time.Now()))
	st, err := store.Stats(ctx)
	require.NoError(b, err)
	want := int64(ticks * len(gpus) * len(metrics))
	if st.TotalSamples < want {
		require.Zero(b, st.TotalSamples, "telemetry_bench holds a partial load: drop it and run again")
		// A collector compacts as it writes, at the default interval.
		defaults, err := config.Load(nil, io.Discard)
		require.NoError(b, err)
		compactCtx, stop := context.WithCancel(ctx)
		compacted := make(chan error, 1)
		go func() { compacted <- store.Compactor(compactCtx, defaults.CompactInterval) }()
		writeLoad(b, store, gpus, metrics, t0, ticks, step)
		stop()
		require.NoError(b, <-compacted)
	} else {
		fmt.Printf("reusing %d samples in telemetry_bench\n", st.TotalSamples)
	}
	fmt.Printf("compaction caught up in %s\n", compactAndVacuum(b, dbURL).Round(time.Second))
}

// compactAndVacuum compacts until no GPU is left to merge, then runs VACUUM ANALYZE and a
// checkpoint: the state a collector's compactor, autovacuum and the checkpointer leave a
// database in a while after a bulk load, which the query benchmarks measure rather than
// those catching up. It returns how long compaction took.
func compactAndVacuum(b *testing.B, dbURL string) time.Duration {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
	require.NoError(b, err)
	defer store.Close()
	start := time.Now()
	for {
		st, err := store.Compact(ctx)
		require.NoError(b, err)
		if st.GPUs == 0 {
			break
		}
	}
	took := time.Since(start)
	db, err := sql.Open("pgx", dbURL)
	require.NoError(b, err)
	defer db.Close()
	_, err = db.Exec(`VACUUM ANALYZE chunks`)
	require.NoError(b, err)
	// And the burst's dirty pages written out, rather than the checkpointer writing them
	// while queries are measured.
	_, err = db.Exec(`CHECKPOINT`)
	require.NoError(b, err)
	return took
}

// writeLoad writes ticks readings of every metric of every GPU.
func writeLoad(b *testing.B, store *sqlstore.Store, gpus []telemetry.GPU, metrics []string, t0 time.Time, ticks int, step time.Duration) {
	ctx := context.Background()
	want := int64(ticks * len(gpus) * len(metrics))
	start := time.Now()
	// Batches as a streamer cuts them with the default --batch-size: 5,000 samples in the
	// file's order (every GPU for one metric, then the next metric), so chunks come out as
	// the pipeline writes them — about 20 samples of a GPU each.
	const perBatch = 5000
	var wg sync.WaitGroup
	work := make(chan telemetry.Batch, 2)
	for range 2 {
		wg.Go(func() {
			for batch := range work {
				_, err := store.WriteBatch(ctx, batch)
				require.NoError(b, err)
			}
		})
	}
	batch := telemetry.Batch{ID: "bench-0", GPUs: gpus}
	n := 0
	for tick := range ticks {
		at := t0.Add(time.Duration(tick) * step)
		for mi, m := range metrics {
			for gi, g := range gpus {
				batch.Samples = append(batch.Samples, telemetry.Sample{GPU: g.UUID, Metric: m, Time: at,
					Value: float64((tick*7 + gi*3 + mi) % 100)})
				if len(batch.Samples) == perBatch {
					work <- batch
					n++
					batch = telemetry.Batch{ID: fmt.Sprintf("bench-%d", n), GPUs: gpus}
				}
			}
		}
		if tick%400 == 0 {
			fmt.Printf("loading: %d of %d samples\n", int64(tick*len(gpus)*len(metrics)), want)
		}
	}
	if len(batch.Samples) > 0 {
		work <- batch
	}
	close(work)
	wg.Wait()
	fmt.Printf("loaded %d samples in %s\n", want, time.Since(start).Round(time.Second))
}

// TestMain removes the binary the benchmarks built.
func TestMain(m *testing.M) { apptest.Main(m) }
