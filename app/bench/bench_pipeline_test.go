package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue/asynqtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// BenchmarkPipeline measures ingestion end to end — the bundled file replayed with fresh
// timestamps, about 6 million samples per scenario — against a baseline measured in the same
// run: raw pgx COPY into a narrow indexed table. Run it with make bench; TELEMETRY_BENCH_ONLY
// runs only the scenarios whose name contains it (the baseline always runs), and
// TELEMETRY_BENCH_ARGS adds flags to every process, e.g. "--batch-size=5000".
func BenchmarkPipeline(b *testing.B) {
	if os.Getenv("TELEMETRY_BENCH_PIPELINE") == "" {
		b.Skip("takes minutes: run make bench")
	}
	const passes = 2430 // × 2,470 rows = 6,002,100 samples: several seconds per scenario at a million a second
	total := int64(passes * 2470)
	redisURL := asynqtest.RedisURL(b)

	var results []benchResult
	results = append(results, copyBaseline(b, total))
	results = append(results, runScenario(b, "mode all, PostgreSQL", total, func(b *testing.B, s *scenario) {
		s.db = sqlstoretest.PostgresURL(b)
		s.api = s.start(b, "all", "--database-url="+s.db, "--passes="+fmt.Sprint(passes))
	}))
	results = append(results, runScenario(b, "mode all, embedded SQLite", total, func(b *testing.B, s *scenario) {
		s.api = s.start(b, "all", "--database-url="+sqlstoretest.SQLiteURL(b), "--passes="+fmt.Sprint(passes))
	}))
	for _, n := range []int{1, 3, 10} {
		results = append(results, runScenario(b, fmt.Sprintf("split %d×%d over Redis", n, n), total, func(b *testing.B, s *scenario) {
			s.db = sqlstoretest.PostgresURL(b)
			queue := asynqtest.QueueName(b, redisURL)
			s.api = s.start(b, "api", "--mode=api", "--database-url="+s.db)
			for range n {
				s.start(b, "collector", "--mode=collector", "--database-url="+s.db, "--redis-url="+redisURL, "--queue-name="+queue)
			}
			for i := range n {
				s.start(b, "streamer", "--mode=streamer", "--redis-url="+redisURL, "--queue-name="+queue,
					fmt.Sprintf("--shard=%d/%d", i, n), "--passes="+fmt.Sprint(passes))
			}
		}))
	}

	if only := os.Getenv("TELEMETRY_BENCH_ONLY"); only == "" || strings.Contains("streamer alone", only) {
		results = append(results, streamerAlone(b, redisURL, passes, total))
	}

	base := results[0].rate
	var table strings.Builder
	table.WriteString("\n| Scenario | samples/s | × baseline | peak RSS (MB) | CPU s per 1M samples | window queries on its tables, as written → compacted: p50 / p99, requests/s |\n|---|---|---|---|---|---|\n")
	for _, r := range results {
		if r.rate == 0 {
			continue // left out by TELEMETRY_BENCH_ONLY
		}
		fmt.Fprintf(&table, "| %s | %.0f | %.2f | %s | %.1f | %s |\n", r.name, r.rate, r.rate/base, r.rss, r.cpuPerM, r.queries)
	}
	fmt.Print(table.String())
}

type benchResult struct {
	name    string
	rate    float64 // samples stored per second
	rss     string  // peak RSS per process kind
	cpuPerM float64 // CPU seconds of every process per million samples
	queries string  // window queries on the tables written, as make bench-api measures them
}

// copyBaseline writes total samples with pgx CopyFrom, 10,000 rows per COPY, on one
// connection, into (gpu int4, metric int2, ts timestamptz, value float8) with a btree on
// (gpu, ts) — the same code path every run, so the ratios stay comparable.
func copyBaseline(b *testing.B, total int64) benchResult {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, sqlstoretest.PostgresURL(b))
	require.NoError(b, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `CREATE TABLE baseline (gpu int4 NOT NULL, metric int2 NOT NULL, ts timestamptz NOT NULL, value float8 NOT NULL);
		CREATE INDEX ON baseline (gpu, ts)`)
	require.NoError(b, err)
	gpus, metrics := bundledFleet(b)
	perTick := int64(len(gpus) * len(metrics))
	var usage0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage0)
	start := time.Now()
	t0 := time.Now()
	for written := int64(0); written < total; {
		n := min(int64(10_000), total-written)
		i := int64(0)
		_, err := conn.CopyFrom(ctx, pgx.Identifier{"baseline"}, []string{"gpu", "metric", "ts", "value"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i == n {
					return nil, nil
				}
				k := written + i
				i++
				return []any{int32(k % int64(len(gpus))), int16(k / int64(len(gpus)) % int64(len(metrics))),
					t0.Add(time.Duration(k/perTick) * time.Second), float64(k % 100)}, nil
			}))
		require.NoError(b, err)
		written += n
	}
	elapsed := time.Since(start)
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	clientCPU := cpuOf(usage) - cpuOf(usage0)
	return benchResult{name: "baseline: pgx COPY, narrow table (client CPU only)", rate: float64(total) / elapsed.Seconds(),
		rss: "—", cpuPerM: clientCPU.Seconds() / (float64(total) / 1e6), queries: "—"}
}

// streamerAlone measures one streamer publishing to Redis as fast as it can, with no
// backlog limit and no collector.
func streamerAlone(b *testing.B, redisURL string, passes int, total int64) benchResult {
	queue := asynqtest.QueueName(b, redisURL)
	start := time.Now()
	p := apptest.Spawn(b, "streamer-alone", "--mode=streamer", "--redis-url="+redisURL, "--queue-name="+queue,
		"--speed=0", "--loop=true", "--timestamps=now", "--max-backlog=0", "--log-level=warn",
		"--passes="+fmt.Sprint(passes))
	peak := apptest.WatchRSS(p)
	require.NoError(b, p.Wait(b, 5*time.Minute))
	elapsed := time.Since(start)
	u := p.Cmd.ProcessState.SysUsage().(*syscall.Rusage)
	fmt.Printf("streamer alone: %d samples published in %s\n", total, elapsed.Round(time.Millisecond))
	return benchResult{name: "streamer alone → Redis (published, not stored)", rate: float64(total) / elapsed.Seconds(),
		rss: fmt.Sprintf("streamer %d", peak()), cpuPerM: cpuOf(*u).Seconds() / (float64(total) / 1e6), queries: "—"}
}

func cpuOf(u syscall.Rusage) time.Duration {
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// scenario is a set of processes of the binary working on one database.
type scenario struct {
	db    string
	api   *apptest.Proc
	procs map[string][]*apptest.Proc // by kind
	peaks map[*apptest.Proc]func() int64
}

func (s *scenario) start(b *testing.B, kind string, args ...string) *apptest.Proc {
	args = append([]string{"--speed=0", "--loop=true", "--timestamps=now", "--log-level=warn"}, args...)
	args = append(args, strings.Fields(os.Getenv("TELEMETRY_BENCH_ARGS"))...)
	p := apptest.Spawn(b, fmt.Sprintf("%s-%d", kind, len(s.procs[kind])), args...)
	s.procs[kind] = append(s.procs[kind], p)
	s.peaks[p] = apptest.WatchRSS(p)
	return p
}

// runScenario starts the processes, waits until total samples are stored (polling the API),
// stops them and reads their resource usage. (The newest sample's age no longer measures
// latency: an unpaced replay's timestamps keep the file's spacing and run ahead of the
// clock.)
func runScenario(b *testing.B, name string, total int64, setup func(*testing.B, *scenario)) benchResult {
	if only := os.Getenv("TELEMETRY_BENCH_ONLY"); only != "" && !strings.Contains(name, only) {
		return benchResult{name: name}
	}
	s := &scenario{procs: map[string][]*apptest.Proc{}, peaks: map[*apptest.Proc]func() int64{}}
	setup(b, s)
	base := "http://" + s.api.Addr
	apptest.WaitUp(b, base)
	client := &http.Client{Timeout: 5 * time.Second}
	type stats struct {
		Total int64 `json:"total_records"`
	}
	// The clock starts once every process is up: start-up (connecting, migrating) is not
	// ingestion. Samples stored before that moment are not counted.
	var first stats
	require.NoError(b, apptest.GetJSON(client, base+"/api/v1/stats", &first))
	start, cpu0 := time.Now(), machineCPU(b)
	stored := first.Total
	deadline := time.Now().Add(5 * time.Minute)
	for stored < total && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		var st stats
		if apptest.GetJSON(client, base+"/api/v1/stats", &st) != nil {
			continue
		}
		stored = st.Total
	}
	elapsed := time.Since(start)
	busy := machineCPU(b).busySince(cpu0)
	require.GreaterOrEqual(b, stored, total, "%s: stored in 5 minutes", name)

	var cpu time.Duration
	rss := map[string]int64{}
	for kind, procs := range s.procs {
		for _, p := range procs {
			rss[kind] = max(rss[kind], s.peaks[p]())
		}
	}
	var wg sync.WaitGroup
	for _, procs := range s.procs {
		for _, p := range procs {
			wg.Go(func() {
				p.Signal(syscall.SIGTERM)
				<-p.Done
			})
		}
	}
	wg.Wait()
	var kinds []string
	for kind, procs := range s.procs {
		kinds = append(kinds, kind)
		for _, p := range procs {
			u := p.Cmd.ProcessState.SysUsage().(*syscall.Rusage)
			cpu += cpuOf(*u)
		}
	}
	slices.Sort(kinds)
	var rssText []string
	for _, k := range kinds {
		rssText = append(rssText, fmt.Sprintf("%s %d", k, rss[k]))
	}
	counted := stored - first.Total
	r := benchResult{name: name, rate: float64(counted) / elapsed.Seconds(), rss: strings.Join(rssText, ", "),
		cpuPerM: cpu.Seconds() / (float64(stored) / 1e6), queries: "—"}
	fmt.Printf("%s: %d samples in %s (%d stored during start-up), machine %.0f%% busy\n", name, counted,
		elapsed.Round(time.Millisecond), first.Total, busy*100)
	if s.db != "" {
		r.queries = queriesOnWrittenTables(b, s.db)
	}
	return r
}

// queriesOnWrittenTables measures window queries on the tables a scenario wrote: as its
// processes left them after a burst far above any cluster's rate, when the compactor has
// not caught up, and once it has and the table is vacuumed.
func queriesOnWrittenTables(b *testing.B, dbURL string) string {
	text := func(p50, p99 time.Duration, rps float64) string {
		return fmt.Sprintf("%.2f / %.2f ms, %.0f", ms(p50), ms(p99), rps)
	}
	asWritten := text(queryWindows(b, dbURL))
	took := compactAndVacuum(b, dbURL)
	fmt.Printf("compaction caught up in %s\n", took.Round(100*time.Millisecond))
	return asWritten + " → " + text(queryWindows(b, dbURL))
}

// queryWindows measures window queries (limit 1000) with a fresh API process and make
// bench-api's load, after the same warm-up: a random GPU, a window starting at a random
// time of the data's.
func queryWindows(b *testing.B, dbURL string) (p50, p99 time.Duration, rps float64) {
	api := apptest.Spawn(b, "api-queries", "--mode=api", "--database-url="+dbURL, "--log-level=warn")
	defer func() {
		api.Signal(syscall.SIGTERM)
		<-api.Done
	}()
	base := "http://" + api.Addr
	apptest.WaitUp(b, base)
	client := &http.Client{Timeout: 5 * time.Second}
	var gpus struct {
		Data []struct{ UUID string }
	}
	require.NoError(b, apptest.GetJSON(client, base+"/api/v1/gpus", &gpus))
	require.NotEmpty(b, gpus.Data)
	var st struct {
		Oldest time.Time `json:"oldest_sample"`
		Newest time.Time `json:"newest_sample"`
	}
	require.NoError(b, apptest.GetJSON(client, base+"/api/v1/stats", &st))
	span := max(st.Newest.Sub(st.Oldest), time.Microsecond)
	window := func(r *rand.Rand) string {
		return hourQuery(gpus.Data[r.IntN(len(gpus.Data))].UUID, st.Oldest.Add(time.Duration(r.Int64N(int64(span)))), "limit=1000")
	}
	hammer(b, api.Addr, window, 8, 2*time.Second) // caches filled, connections open
	return hammer(b, api.Addr, window, 8, 5*time.Second)
}

// cpuTimes is the machine's CPU time so far, from /proc/stat (Linux), in clock ticks.
type cpuTimes struct{ idle, total int64 }

func machineCPU(b *testing.B) cpuTimes {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	var t cpuTimes
	for i, f := range strings.Fields(line)[1:] {
		var v int64
		fmt.Sscan(f, &v)
		t.total += v
		if i == 3 || i == 4 { // idle, iowait
			t.idle += v
		}
	}
	return t
}

// busySince is the share of the machine's CPU used since an earlier reading.
func (t cpuTimes) busySince(before cpuTimes) float64 {
	if t.total == before.total {
		return 0
	}
	return 1 - float64(t.idle-before.idle)/float64(t.total-before.total)
}
