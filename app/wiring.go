package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/console"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/csvsource"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/httpapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/memqueue"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/promapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/promexport"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/remotewrite"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/scrapesource"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/webconfig"
	"github.com/telemetry-pipeline/telemetry-pipeline/config"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/ingest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/stream"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// modes maps each mode to the components its process runs, in start order; they stop in
// reverse order. A one-shot import (--exit-when-done) leaves out those that serve HTTP or
// prune: it needs no port, and must not delete what it stores.
var modes = map[config.Mode][]builder{
	config.ModeAll:       {api, collector, compactor, recorder, pruner, streamer},
	config.ModeStreamer:  {probes, streamer},
	config.ModeCollector: {probes, collector, compactor, recorder, pruner},
	config.ModeAPI:       {api},
	config.ModeMigrate:   {migrate},
}

// builder makes one component of the wiring.
type builder struct {
	build   func(*wiring, context.Context) (component, error)
	oneShot bool // run by a one-shot import too
}

var (
	api       = builder{build: (*wiring).api}
	probes    = builder{build: (*wiring).probes}
	collector = builder{build: (*wiring).collector, oneShot: true}
	compactor = builder{build: (*wiring).compactor, oneShot: true}
	recorder  = builder{build: (*wiring).workloadRecorder}
	pruner    = builder{build: (*wiring).pruner}
	streamer  = builder{build: (*wiring).streamer, oneShot: true}
	migrate   = builder{build: (*wiring).migrate, oneShot: true}
)

// batchesTopic is the in-process queue topic between streamer and collector.
const batchesTopic = "telemetry.batches"

// wiring builds components from adapters, sharing what several of them need (the store,
// the queue) and closing it when the process ends.
type wiring struct {
	cfg      config.Config
	log      *slog.Logger
	store    *sqlstore.Store
	replica  *sqlstore.Store   // the API's reads, with --database-read-url
	broker   *memqueue.Broker  // the in-process queue, without --redis-url
	redis    *asynqqueue.Queue // the Redis queue, with --redis-url
	live     *stream.Live      // publishes scrapes and remote_write requests
	scraper  *scrapesource.Scraper
	csv      *stream.Service // the CSV streamer, for the one-shot import's report
	ingest   *ingest.Service // the collector, likewise
	recorder *workload.Recorder
	rw       *remotewrite.Receiver
	web      *webconfig.Config // with --web-config-file
	metrics  *promexport.Registry
}

func (w *wiring) build(ctx context.Context) ([]component, error) {
	builders, ok := modes[w.cfg.Mode]
	if !ok {
		return nil, fmt.Errorf("mode %q is not available in this build", w.cfg.Mode)
	}
	if w.cfg.WebConfigFile != "" {
		web, err := webconfig.Load(w.cfg.WebConfigFile, w.log.With("component", "web"))
		if err != nil {
			return nil, err
		}
		w.web = web
		w.log.Info("web config", web.Describe()...)
	}
	w.metrics = promexport.New()
	components := make([]component, 0, len(builders))
	for _, b := range builders {
		if w.cfg.ExitWhenDone && !b.oneShot {
			continue
		}
		c, err := b.build(w, ctx)
		if err != nil {
			return nil, err
		}
		components = append(components, c)
	}
	w.metrics.Register(w.collectors()...)
	return components, nil
}

// report is the one-shot import's summary, for stdout, and a warning when the store holds
// samples that the retention of a later run would delete.
func (w *wiring) report(ctx context.Context, took time.Duration) string {
	if w.csv == nil {
		return ""
	}
	st := w.csv.Stats()
	rejected := fmt.Sprint(st.Source.Rejected, " rejected")
	if reasons := st.Source.Reasons(); reasons != "" {
		rejected += " (" + reasons + ")"
	}
	src := fmt.Sprintf("%s: %d rows read, %s, %d blank", w.cfg.CSV, st.Source.Rows, rejected, st.Source.Blank)
	if w.ingest == nil { // a streamer: the collectors store what it published
		return fmt.Sprintf("%s; %d samples published in %d batches in %s\n", src, st.Samples, st.Batches, took.Round(time.Millisecond))
	}
	in := w.ingest.Stats()
	out := fmt.Sprintf("%s; %d samples stored in %d batches (%d batches stored before, %d samples left out, %d already stored) in %s\n",
		src, in.Samples, in.Batches, in.Duplicates, in.Rejected, in.AlreadyStored, took.Round(time.Millisecond))
	if retention := w.retention(w.store).Raw; retention > 0 {
		if st, err := w.store.Stats(ctx); err == nil && !st.Oldest.IsZero() && st.Oldest.Before(time.Now().Add(-retention)) {
			out += fmt.Sprintf("note: the oldest sample stored is from %s; a run that prunes this database (mode all or collector) deletes what is older than %s behind its newest sample: give it --retention=0, or a longer one, to keep them\n",
				st.Oldest.Format(time.RFC3339), model.Duration(retention))
		}
	}
	return out
}

func (w *wiring) close() {
	if w.redis != nil {
		w.redis.Close()
	}
	for _, st := range []*sqlstore.Store{w.store, w.replica} {
		if st != nil {
			if err := st.Close(); err != nil {
				w.log.Warn("close database", "err", err)
			}
		}
	}
}

// openStore opens the database once, retrying an unreachable server for DBConnectTimeout.
func (w *wiring) openStore(ctx context.Context) (*sqlstore.Store, error) {
	if w.store == nil {
		store, err := w.open(ctx, w.cfg.DatabaseURL, false, "database ready")
		if err != nil {
			return nil, err
		}
		w.store = store
	}
	return w.store, nil
}

// readStore is where the API reads: a replica with --database-read-url, else the store.
func (w *wiring) readStore(ctx context.Context) (*sqlstore.Store, error) {
	if w.cfg.DatabaseReadURL == "" {
		return w.openStore(ctx)
	}
	store, err := w.open(ctx, w.cfg.DatabaseReadURL, true, "API reads from a replica")
	if err != nil {
		return nil, err
	}
	w.replica = store
	return store, nil
}

func (w *wiring) open(ctx context.Context, url string, readOnly bool, opened string) (*sqlstore.Store, error) {
	store, err := sqlstore.Open(ctx, url, sqlstore.Options{
		MaxConns: w.dbConns(), ConnectTimeout: w.cfg.DBConnectTimeout, ReadOnly: readOnly,
		Logger: w.log.With("component", "store", "read_only", readOnly),
	})
	if err != nil {
		return nil, err
	}
	w.log.Info(opened, "url", sqlstore.Redact(url))
	return store, nil
}

// dbConns sizes the connection pool unless --db-max-conns does. A query holds its
// connection only while it runs (rows are read in full before they are worked on), so two
// per core, four at least, keep the API's cores busy; more let PostgreSQL backends crowd
// the cores of a small machine (on two cores, ten connections cost PostgreSQL a quarter
// more CPU per window query than four). A collector writes collector-workers batches at
// once, and its compactor, probes and workload recorder take one each (the recorder a
// second, for its lock).
func (w *wiring) dbConns() int {
	if w.cfg.DBMaxConns > 0 {
		return w.cfg.DBMaxConns
	}
	n := 0
	if w.cfg.Mode == config.ModeAll || w.cfg.Mode == config.ModeAPI {
		n += max(2*runtime.GOMAXPROCS(0), 4) // a one-core pod still overlaps round trips
	}
	if w.cfg.Mode == config.ModeAll || w.cfg.Mode == config.ModeCollector {
		n += w.cfg.CollectorWorkers + 4
	}
	return max(n, 2) // mode migrate: upgrading old tables takes one, a probe another
}

// handlers is how many batches a collector takes from the queue at once: four per write
// in progress, so that batches arriving together wait for a writer and are written together.
func (w *wiring) handlers() int { return 4 * w.cfg.CollectorWorkers }

// redisQueue opens the Redis queue once.
func (w *wiring) redisQueue() (*asynqqueue.Queue, error) {
	if w.redis != nil {
		return w.redis, nil
	}
	q, err := asynqqueue.Open(w.cfg.RedisURL, asynqqueue.Options{
		Name:        w.cfg.QueueName,
		MaxBacklog:  w.cfg.MaxBacklog,
		MinReplicas: w.cfg.RedisMinReplicas,
		Concurrency: w.handlers(),
		Logger:      w.log.With("component", "queue"),
	})
	if err != nil {
		return nil, err
	}
	w.log.Info("queue: Redis", "url", asynqqueue.Redact(w.cfg.RedisURL), "queue", w.cfg.QueueName)
	w.redis = q
	return q, nil
}

// ready reports whether the servers this process uses answer, and the database takes the
// collector's writes.
func (w *wiring) ready(ctx context.Context) error {
	if w.store != nil {
		if err := w.store.Ping(ctx); err != nil {
			return fmt.Errorf("database: %w", err)
		}
	}
	if w.replica != nil {
		if err := w.replica.Ping(ctx); err != nil {
			return fmt.Errorf("read replica: %w", err)
		}
	}
	if w.ingest != nil {
		if err := w.ingest.Failing(); err != nil {
			return fmt.Errorf("database: %w", err)
		}
	}
	if w.redis != nil {
		return w.redis.Ping(ctx)
	}
	return nil
}

// migrate opens the database, which applies pending migrations, and has nothing to run.
func (w *wiring) migrate(ctx context.Context) (component, error) {
	if _, err := w.openStore(ctx); err != nil {
		return component{}, err
	}
	return component{name: "migrate", run: func(context.Context) error { return nil }}, nil
}

// probes serves /health and /ready for processes without the REST API. It does not keep
// the process alive by itself.
func (w *wiring) probes(ctx context.Context) (component, error) {
	opts := httpapi.Options{Ready: w.ready, Metrics: w.metrics.Handler(), Observe: w.metrics.ObserveHTTP, Logger: w.log.With("component", "probes")}
	if w.cfg.Mode == config.ModeStreamer {
		var err error
		if opts, err = w.httpOptions(opts); err != nil {
			return component{}, err
		}
	} else if w.web != nil {
		opts.TLS = w.web.TLS()
	}
	api := httpapi.New(opts)
	return component{name: "probes", aux: true, run: func(ctx context.Context) error {
		return api.Serve(ctx, w.cfg.HTTPAddr, 5*time.Second)
	}}, nil
}

// topic is the in-process queue's topic of batches.
func (w *wiring) topic() *memqueue.Topic {
	if w.broker == nil {
		w.broker = memqueue.New(memqueue.Options{
			Capacity: w.cfg.QueueCapacity,
			Workers:  w.handlers(),
			Logger:   w.log.With("component", "queue"),
		})
	}
	return w.broker.Topic(batchesTopic)
}

// publisher is the queue streamers publish to: Redis with --redis-url, else in-process.
func (w *wiring) publisher() (ports.Publisher, error) {
	if w.cfg.RedisURL != "" {
		return w.redisQueue()
	}
	return w.topic(), nil
}

// liveFeed publishes the live sources' telemetry, once per process.
func (w *wiring) liveFeed() (*stream.Live, error) {
	if w.live == nil {
		pub, err := w.publisher()
		if err != nil {
			return nil, err
		}
		w.live = stream.NewLive(pub, w.cfg.BatchSize, w.cfg.FutureTolerance, w.log.With("component", "live"))
	}
	return w.live, nil
}

// scrapeSource is the scraper of the configured targets, nil when none is.
func (w *wiring) scrapeSource() *scrapesource.Scraper {
	if w.scraper == nil && w.cfg.Scrapes() {
		w.scraper = scrapesource.New(scrapesource.Options{
			Static: w.cfg.ScrapeTargets, File: w.cfg.ScrapeTargetsFile, DNS: w.cfg.ScrapeDNS,
			Interval: w.cfg.ScrapeInterval, Timeout: w.cfg.ScrapeTimeout, Job: w.cfg.ScrapeJob,
			MaxBody: w.cfg.ScrapeBodySizeLimit, Keep: w.shard().Owns, Logger: w.log.With("component", "scraper"),
		})
	}
	return w.scraper
}

// httpOptions adds to opts what the streamer role serves over HTTP: the remote_write
// receiver and the scrape targets.
func (w *wiring) httpOptions(opts httpapi.Options) (httpapi.Options, error) {
	if w.web != nil {
		opts.Auth, opts.TLS, opts.Wrap, opts.Limit = w.web, w.web.TLS(), w.web.Wrap, w.web.Allow
	}
	if w.cfg.RemoteWrite {
		live, err := w.liveFeed()
		if err != nil {
			return opts, err
		}
		w.rw = remotewrite.New(remotewrite.Options{Publish: live.Publish, Timeout: w.cfg.RemoteWriteTimeout,
			MaxConcurrent: w.cfg.RemoteWriteMaxConcurrency, MaxNewDevices: w.cfg.RemoteWriteMaxNewDevices, MaxBytes: w.cfg.RemoteWriteMaxBody,
			Chunk: 2 * w.cfg.BatchSize, Logger: w.log.With("component", "remote_write")})
		opts.RemoteWrite = w.rw.Write
		w.log.Info("receiving Prometheus remote_write on " + w.cfg.HTTPAddr + "/api/v1/write")
	}
	switch sc := w.scrapeSource(); {
	case sc != nil:
		opts.Targets = sc.Targets
	case w.cfg.Mode != config.ModeAPI: // a streamer that scrapes nothing lists no target, not 404
		opts.Targets = func() []telemetry.Target { return nil }
	}
	return opts, nil
}

// streamer runs the configured sources: the CSV file (or, when no source is named, the
// bundled sample) and the scrape targets. The remote_write receiver is served over HTTP; a
// streamer with no other source waits for its requests.
func (w *wiring) streamer(ctx context.Context) (component, error) {
	log := w.log.With("component", "streamer")
	var runs []func(context.Context) error
	if w.cfg.CSV != "" || w.cfg.Bundled() {
		run, err := w.csvStreamer(log)
		if err != nil {
			return component{}, err
		}
		runs = append(runs, run)
	}
	if sc := w.scrapeSource(); sc != nil {
		if err := sc.Check(); err != nil {
			return component{}, err
		}
		live, err := w.liveFeed()
		if err != nil {
			return component{}, err
		}
		log.Info("scraping", "targets", len(w.cfg.ScrapeTargets), "targets_file", w.cfg.ScrapeTargetsFile,
			"dns", w.cfg.ScrapeDNS, "interval", w.cfg.ScrapeInterval, "shard", w.shard().String())
		runs = append(runs, func(ctx context.Context) error { return live.Run(ctx, sc) })
	}
	if w.cfg.RemoteWrite {
		if _, err := w.liveFeed(); err != nil {
			return component{}, err
		}
		runs = append(runs, func(ctx context.Context) error { <-ctx.Done(); return nil })
	}
	return component{name: "streamer", final: w.cfg.ExitWhenDone, run: func(ctx context.Context) error {
		var g errgroup.Group // every source runs to its end; the first failure is the streamer's
		for _, run := range runs {
			g.Go(func() error { return run(ctx) })
		}
		return g.Wait()
	}}, nil
}

// csvStreamer streams the CSV file, or the bundled sample.
func (w *wiring) csvStreamer(log *slog.Logger) (func(context.Context) error, error) {
	opts := csvsource.Options{KeepTimestamps: w.cfg.Timestamps == "csv", FutureTolerance: w.cfg.FutureTolerance,
		Logger: log, Keep: w.shard().Owns}
	src := csvsource.Bytes(bundledCSVName, bundledCSV, opts)
	if w.cfg.CSV != "" {
		src = csvsource.File(w.cfg.CSV, opts)
	}
	if err := src.Check(); err != nil {
		return nil, err
	}
	pub, err := w.publisher()
	if err != nil {
		return nil, err
	}
	svc := stream.New(stream.Config{
		BatchSize:      w.cfg.BatchSize,
		Interval:       w.cfg.Interval,
		Loop:           w.cfg.Loop,
		Passes:         w.cfg.Passes,
		KeepTimestamps: w.cfg.Timestamps == "csv",
		Speed:          w.cfg.Speed,
		Shard:          w.shard(),
	}, src, pub, log, nil)
	w.csv = svc
	log.Info("streaming", "source", src.Name(), "batch_size", w.cfg.BatchSize, "interval", w.cfg.Interval,
		"loop", w.cfg.Loop, "timestamps", w.cfg.Timestamps, "speed", w.cfg.Speed, "shard", w.shard().String())
	return svc.Run, nil
}

// collector stores the batches of the queue. On Redis, stopping returns unfinished batches
// to the queue. The in-process queue is drained first instead — the streamer has stopped by
// then — since what it holds exists nowhere else.
func (w *wiring) collector(ctx context.Context) (component, error) {
	store, err := w.openStore(ctx)
	if err != nil {
		return component{}, err
	}
	log := w.log.With("component", "collector")
	observe := w.metrics.Histogram("telemetry_batch_write_duration_seconds",
		"Time of the collector's database writes (each stores every batch waiting, in one transaction), by result: stored, invalid, unavailable, canceled or error.",
		[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "result")
	svc := ingest.New(store, ingest.Options{Logger: log, Writers: w.cfg.CollectorWorkers,
		Observe: func(_ int, took time.Duration, err error) { observe(took.Seconds(), writeResult(err)) }})
	w.ingest = svc
	handle := func(ctx context.Context, b telemetry.Batch) error {
		_, err := svc.Ingest(ctx, b)
		return err
	}
	if w.cfg.RedisURL != "" {
		q, err := w.redisQueue()
		if err != nil {
			return component{}, err
		}
		return component{name: "collector", run: func(ctx context.Context) error {
			err := q.Consume(ctx, handle)
			svc.LogProgress(ctx, svc.Stats(), "collector stopped")
			return err
		}}, nil
	}
	topic := w.topic()
	run := func(ctx context.Context) error {
		// Give up a little before the process's own shutdown deadline, to say what is lost.
		err := topic.ConsumeAndDrain(ctx, handle, w.cfg.ShutdownTimeout*9/10)
		if err == nil {
			svc.LogProgress(ctx, svc.Stats(), "collector stopped")
		}
		return err
	}
	return component{name: "collector", run: run}, nil
}

// compactor merges the small chunks that batches write and seals windows that are over
// into blocks, beside the collector. It does not keep the process alive by itself.
func (w *wiring) compactor(ctx context.Context) (component, error) {
	store, err := w.openStore(ctx)
	if err != nil {
		return component{}, err
	}
	run := func(ctx context.Context) error { return store.Compactor(ctx, w.cfg.CompactInterval) }
	if w.cfg.CompactInterval == 0 {
		w.log.Debug("compaction off: chunks stay as batches write them")
		run = func(ctx context.Context) error { <-ctx.Done(); return nil }
	}
	return component{name: "compactor", aux: true, run: run}, nil
}

// workloadRecorder makes workload records from the samples as they settle, beside the collector.
// It does not keep the process alive by itself.
func (w *wiring) workloadRecorder(ctx context.Context) (component, error) {
	if w.cfg.WorkloadInterval == 0 {
		w.log.Info("workload records off (--workload-interval=0)")
		return component{name: "recorder", aux: true, run: func(ctx context.Context) error { <-ctx.Done(); return nil }}, nil
	}
	store, err := w.openStore(ctx)
	if err != nil {
		return component{}, err
	}
	w.recorder = workload.NewRecorder(query.NewFleet(store, store), store, store, workload.Config{}, w.log.With("component", "workloads"))
	return component{name: "recorder", aux: true, run: func(ctx context.Context) error {
		return w.recorder.Run(ctx, w.cfg.WorkloadInterval, time.Now)
	}}, nil
}

// pruner deletes, beside the collector, what is older than the retention of each kind of
// data. It does not keep the process alive by itself.
func (w *wiring) pruner(ctx context.Context) (component, error) {
	store, err := w.openStore(ctx)
	if err != nil {
		return component{}, err
	}
	retention := w.retention(store)
	if retention.Raw == 0 && retention.Tiers[0] == 0 && retention.Tiers[1] == 0 && retention.Workloads == 0 {
		w.log.Info("retention: samples, the downsampled tiers and workload records are kept forever")
		return component{name: "pruner", aux: true, run: func(ctx context.Context) error { <-ctx.Done(); return nil }}, nil
	}
	keep := func(d time.Duration) string {
		if d == 0 {
			return "forever"
		}
		return model.Duration(d).String()
	}
	w.log.Info("retention: data older than its retention is deleted", "samples", keep(retention.Raw),
		"tier_5m", keep(retention.Tiers[0]), "tier_1h", keep(retention.Tiers[1]), "workloads", keep(retention.Workloads), "every", w.cfg.RetentionInterval)
	// Partitions for the hours ahead before the collector's first write, so that it does not
	// go to the default partition; the pruner keeps them coming.
	if err := store.EnsurePartitions(ctx, sqlstore.PartitionSpan(retention.Raw), time.Now()); err != nil {
		w.log.Warn("retention: making partitions failed, retrying", "err", err)
	}
	return component{name: "pruner", aux: true, run: func(ctx context.Context) error {
		return store.Pruner(ctx, retention, w.cfg.RetentionInterval, time.Now)
	}}, nil
}

// shard is this streamer's share of the GPUs.
func (w *wiring) shard() stream.Shard {
	return stream.Shard{Index: w.cfg.ShardIndex, Count: w.cfg.ShardCount}
}

// retention is how long store keeps samples and each downsampled tier: the flags, or the
// database kind's defaults.
func (w *wiring) retention(store *sqlstore.Store) sqlstore.Retention {
	pg := store.Dialect() == "postgres"
	pick := func(set, onPostgres, onSQLite time.Duration) time.Duration {
		switch {
		case set != config.RetentionAuto:
			return set
		case pg:
			return onPostgres
		}
		return onSQLite
	}
	return sqlstore.Retention{
		Raw: pick(w.cfg.Retention, config.DefaultRetentionPostgres, config.DefaultRetentionSQLite),
		Tiers: []time.Duration{ // as engine.Tiers lists them
			pick(w.cfg.Retention5m, config.DefaultRetention5mPostgres, config.DefaultRetention5mSQLite),
			pick(w.cfg.Retention1h, config.DefaultRetention1hPostgres, config.DefaultRetention1hSQLite),
		},
		Workloads: w.cfg.RetentionWorkloads,
		Recorded:  w.cfg.WorkloadInterval > 0,
	}
}

// xidCatalog is the shipped XID catalog, amended by --xid-catalog.
func (w *wiring) xidCatalog() (health.Catalog, error) {
	catalog := health.DefaultCatalog()
	if w.cfg.XIDCatalog == "" {
		return catalog, nil
	}
	data, err := os.ReadFile(w.cfg.XIDCatalog)
	if err != nil {
		return catalog, fmt.Errorf("--xid-catalog: %w", err)
	}
	if catalog, err = catalog.With(data); err != nil {
		return catalog, fmt.Errorf("--xid-catalog %s: %w", w.cfg.XIDCatalog, err)
	}
	w.log.Info("XID catalog amended", "file", w.cfg.XIDCatalog, "codes", catalog.Len())
	return catalog, nil
}

func (w *wiring) api(ctx context.Context) (component, error) {
	store, err := w.readStore(ctx)
	if err != nil {
		return component{}, err
	}
	catalog, err := w.xidCatalog()
	if err != nil {
		return component{}, err
	}
	opts := httpapi.Options{Query: query.New(store, store, store, store).WithTiers(store),
		Fleet:     query.NewFleet(store, store).WithTiers(store).WithRecords(store).WithCatalog(catalog),
		Workloads: store, Ready: w.ready, Metrics: w.metrics.Handler(),
		Observe: w.metrics.ObserveHTTP, Logger: w.log.With("component", "api"), Console: console.Handler(),
		Prometheus: promapi.New(promapi.Options{Queryable: &promapi.Queryable{Inventory: store, Series: store, Tiers: store},
			SubqueryStep: w.cfg.PromQLSubqueryStep, MaxConcurrency: w.cfg.PromQLMaxConcurrency,
			MaxQueryLength: w.cfg.PromQLMaxQueryLength, MaxDepth: w.cfg.PromQLMaxDepth, MaxSamples: w.cfg.PromQLMaxSamples,
			Logger: w.log.With("component", "promql")}),
	}
	if w.cfg.QueueUI {
		q, err := w.redisQueue()
		if err != nil {
			return component{}, err
		}
		opts.Mounts = map[string]http.Handler{"/queues": q.Monitor("/queues")}
		w.log.Info("queue UI on " + w.cfg.HTTPAddr + "/queues")
	}
	if opts, err = w.httpOptions(opts); err != nil {
		return component{}, err
	}
	api := httpapi.New(opts)
	w.log.Info("REST API on "+w.cfg.HTTPAddr, "console", "/", "gpus", "/api/v1/gpus", "stats", "/api/v1/stats", "swagger_ui", "/swagger/index.html")
	return component{name: "api", run: func(ctx context.Context) error {
		return api.Serve(ctx, w.cfg.HTTPAddr, 5*time.Second)
	}}, nil
}
