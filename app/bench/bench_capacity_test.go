package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue/asynqtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// The shape of the capacity runs: dcgm-exporters of about 8 GPUs, 50 fields each, scraped
// every 10 s, as docs/scaling.md sizes fleets.
const (
	capacityFields   = 50
	capacityInterval = 10 * time.Second
)

// capacity is what one run measured over its measured span.
type capacity struct {
	hosts, series int
	targets       int           // exporters scraped: hosts, but never fewer than the bundled fleet's 31
	samples       int64         // stored in the span
	span          time.Duration // measured
	streamer      time.Duration // CPU
	collector     time.Duration
	postgres      time.Duration
	redis         time.Duration
	redisPeak     int64 // bytes
	dbBytes       int64 // growth of the database
	walBytes      int64
	commits       int64
	streamerRSS   int64 // MB
	collectorRSS  int64
	missed        int64
}

// roles are the processes whose CPU a capacity run measures.
var roles = []struct {
	name string
	of   func(capacity) time.Duration
}{
	{"streamer", func(c capacity) time.Duration { return c.streamer }},
	{"collector", func(c capacity) time.Duration { return c.collector }},
	{"PostgreSQL", func(c capacity) time.Duration { return c.postgres }},
	{"Redis", func(c capacity) time.Duration { return c.redis }},
}

func (c capacity) rate() float64 { return float64(c.samples) / c.span.Seconds() }

// cores is a role's CPU over the run, in cores.
func (c capacity) cores(of func(capacity) time.Duration) float64 {
	return of(c).Seconds() / c.span.Seconds()
}

// linear is a role's CPU in cores at a rate of samples/s: fixed + perSample × rate, the
// fixed part being what a process spends idle (polling the queue, heartbeats, the
// compactor's passes).
type linear struct{ fixed, perSample float64 }

func fit(lo, hi capacity, of func(capacity) time.Duration) linear {
	per := (hi.cores(of) - lo.cores(of)) / (hi.rate() - lo.rate())
	return linear{fixed: lo.cores(of) - per*lo.rate(), perSample: per}
}

func (l linear) at(rate float64) float64 { return l.fixed + l.perSample*rate }

// BenchmarkCapacity measures what each role costs, and PostgreSQL and Redis with them, on
// fleets of real shape at three sizes: about 12,000 and 30,000 series fit a model of each
// role's CPU (fixed + per sample) and the bytes per sample, and about 100,000 series check
// it. docs/scaling.md holds the results and the table made from them.
func BenchmarkCapacity(b *testing.B) {
	if os.Getenv("TELEMETRY_BENCH_CAPACITY") == "" {
		b.Skip("set TELEMETRY_BENCH_CAPACITY=1 (make bench-capacity): three runs of about three minutes")
	}
	run := 2 * time.Minute
	if s := os.Getenv("TELEMETRY_BENCH_CAPACITY_RUN"); s != "" {
		var err error
		run, err = time.ParseDuration(s)
		require.NoError(b, err)
	}
	file := withFields(b, capacityFields)
	runs := []capacity{capacityRun(b, file, 25, run), capacityRun(b, file, 75, run), capacityRun(b, file, 250, run)}
	lo, hi, check := runs[0], runs[1], runs[2]

	fmt.Printf("\n| run | series | samples/s | CPU, cores: streamer / collector / PostgreSQL / Redis | DB bytes per sample | WAL bytes per sample | commits per 1M samples | Redis peak | RSS streamer / collector |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range runs {
		fmt.Printf("| %d exporters | %d | %.0f | %.3f / %.3f / %.3f / %.3f | %.1f | %.1f | %.0f | %.1f MB | %d / %d MB |\n",
			c.targets, c.series, c.rate(), c.cores(roles[0].of), c.cores(roles[1].of), c.cores(roles[2].of), c.cores(roles[3].of),
			float64(c.dbBytes)/float64(c.samples), float64(c.walBytes)/float64(c.samples), float64(c.commits)/float64(c.samples)*1e6,
			float64(c.redisPeak)/1e6, c.streamerRSS, c.collectorRSS)
	}
	fmt.Printf("\n| role | fixed, cores | CPU s per 1M samples | predicted at %.0f samples/s | measured | measured / predicted |\n|---|---|---|---|---|---|\n", check.rate())
	for _, r := range roles {
		m := fit(lo, hi, r.of)
		fmt.Printf("| %s | %.3f | %.2f | %.3f cores | %.3f cores | %.2f |\n", r.name, m.fixed, m.perSample*1e6, m.at(check.rate()),
			check.cores(r.of), check.cores(r.of)/m.at(check.rate()))
	}
	perSample := float64(lo.dbBytes+hi.dbBytes) / float64(lo.samples+hi.samples)
	fmt.Printf("| database growth | — | %.1f bytes per sample | %.1f MB | %.1f MB | %.2f |\n", perSample,
		perSample*float64(check.samples)/1e6, float64(check.dbBytes)/1e6, float64(check.dbBytes)/(perSample*float64(check.samples)))
	for _, c := range runs {
		require.Zero(b, c.missed, "%d hosts: no missed scrape interval", c.hosts)
	}
}

// withFields writes the bundled CSV with each GPU reporting fields fields: its own ten and
// more derived from its utilisation.
func withFields(b testing.TB, fields int) string {
	return apptest.WithAddedFields(b, "dcgm-50-fields.csv", func(util float64) map[string]float64 {
		added := map[string]float64{}
		for k := range fields - 10 {
			added[fmt.Sprintf("DCGM_FI_PROF_SYNTHETIC_%02d", k)] = util * float64(k+1) / 7
		}
		return added
	})
}

// capacityRun serves hosts simulated dcgm-exporters of file, one streamer scraping them
// into Redis and one collector storing them in PostgreSQL; after a minute's warm-up (metric
// registration, the compactor's first merges) it measures for run.
func capacityRun(b *testing.B, file string, hosts int, run time.Duration) capacity {
	targetsFile := filepath.Join(b.TempDir(), fmt.Sprintf("targets-%d.json", hosts))
	sim := spawnSimulator(b, targetsFile, fmt.Sprintf("--hosts=%d", hosts), "--mig=0", "--csv="+file)
	defer func() { sim.Signal(syscall.SIGTERM); <-sim.Done }()

	dbURL, redisURL := sqlstoretest.PostgresURL(b), asynqtest.RedisURL(b)
	queue := asynqtest.QueueName(b, redisURL)
	collector := apptest.Spawn(b, "collector", "--mode=collector", "--database-url="+dbURL, "--redis-url="+redisURL,
		"--queue-name="+queue, "--log-level=warn")
	streamer := apptest.Spawn(b, "scraper", "--mode=streamer", "--scrape-targets-file="+targetsFile,
		"--scrape-interval="+capacityInterval.String(), "--redis-url="+redisURL, "--queue-name="+queue, "--log-level=warn")
	apptest.WaitUp(b, "http://"+collector.Addr)
	apptest.WaitUp(b, "http://"+streamer.Addr)

	db, err := sql.Open("pgx", dbURL)
	require.NoError(b, err)
	defer db.Close()
	opt, err := asynq.ParseRedisURI(redisURL)
	require.NoError(b, err)
	rdb := opt.MakeRedisClient().(*redis.Client) // a redis:// URL makes one
	defer rdb.Close()
	info := rdb.InfoMap(context.Background(), "server")
	require.NoError(b, info.Err())
	rpid, err := strconv.Atoi(info.Item("Server", "process_id"))
	require.NoError(b, err)

	type snapshot struct {
		at                                   time.Time
		streamer, collector, postgres, redis time.Duration
		stored, dbBytes, walBytes, commits   int64
	}
	take := func() snapshot {
		s := snapshot{at: time.Now(), streamer: processCPU(streamer.Cmd.Process.Pid), collector: processCPU(collector.Cmd.Process.Pid),
			postgres: postgresCPU(), redis: processCPU(rpid)}
		require.NoError(b, db.QueryRow(`SELECT (SELECT coalesce(sum(samples), 0) FROM chunks), pg_database_size(current_database()),
			(SELECT wal_bytes FROM pg_stat_wal)::bigint, (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())`).
			Scan(&s.stored, &s.dbBytes, &s.walBytes, &s.commits))
		return s
	}
	time.Sleep(time.Minute)
	_, err = rdb.ConfigResetStat(context.Background()).Result()
	require.NoError(b, err)
	before := take()
	time.Sleep(run)
	after := take()
	info = rdb.InfoMap(context.Background(), "memory")
	require.NoError(b, info.Err())
	peak, err := strconv.ParseInt(info.Item("Memory", "used_memory_peak"), 10, 64)
	require.NoError(b, err)

	var targets struct{ Data []apptest.TargetJSON }
	require.NoError(b, apptest.GetJSON(http.DefaultClient, "http://"+streamer.Addr+"/api/v1/targets", &targets))
	c := capacity{hosts: hosts, samples: after.stored - before.stored, span: after.at.Sub(before.at),
		streamer: after.streamer - before.streamer, collector: after.collector - before.collector,
		postgres: max(after.postgres-before.postgres, 0), redis: after.redis - before.redis, redisPeak: peak,
		dbBytes: after.dbBytes - before.dbBytes, walBytes: after.walBytes - before.walBytes, commits: after.commits - before.commits,
		streamerRSS: peakRSS(b, streamer.Cmd.Process.Pid), collectorRSS: peakRSS(b, collector.Cmd.Process.Pid)}
	c.targets = len(targets.Data)
	for _, tg := range targets.Data {
		c.series += tg.SamplesPerScrape
		c.missed += tg.MissedIntervals
	}
	require.Positive(b, c.samples, "samples stored while measured")
	expected := float64(c.series) / capacityInterval.Seconds() * c.span.Seconds()
	require.InEpsilon(b, expected, float64(c.samples), 0.15, "the collector keeps up: %d stored, %.0f scraped", c.samples, expected)
	streamer.Signal(syscall.SIGTERM)
	collector.Signal(syscall.SIGTERM)
	<-streamer.Done
	<-collector.Done
	return c
}
