// Package config loads the settings of a telemetry process. Every setting has a default, a
// command-line flag and an environment variable (TELEMETRY_ and the flag's name in capitals,
// dashes as underscores); an optional file (--config, YAML, JSON or TOML, keys named like the
// flags) sits between the defaults and the environment. Precedence: flags, then environment,
// then file, then defaults. This is the only package that reads viper.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Mode selects which components a process runs.
type Mode string

// The modes.
const (
	ModeAll       Mode = "all"       // streamer, in-process queue, collector and API in one process
	ModeStreamer  Mode = "streamer"  // CSV → queue
	ModeCollector Mode = "collector" // queue → database
	ModeAPI       Mode = "api"       // database → REST API
	ModeMigrate   Mode = "migrate"   // apply the database migrations, then exit
)

// Modes lists every mode, in the order help shows them.
var Modes = []Mode{ModeAll, ModeStreamer, ModeCollector, ModeAPI, ModeMigrate}

// DefaultSQLite is the database of mode all when none is configured.
const DefaultSQLite = "sqlite:telemetry.db"

// Config is the settings of one process.
type Config struct {
	Mode             Mode          `setting:"mode"`
	HTTPAddr         string        `setting:"http-addr"`
	DatabaseURL      string        `setting:"database-url"`
	DatabaseReadURL  string        `setting:"database-read-url"` // the API's reads; "" = DatabaseURL
	DBConnectTimeout time.Duration `setting:"db-connect-timeout"`
	DBMaxConns       int           `setting:"db-max-conns"` // 0: sized from the mode and the cores

	CSV          string        `setting:"csv"` // path; "" streams the bundled sample
	Loop         bool          `setting:"loop"`
	Passes       int           `setting:"passes"`
	Interval     time.Duration `setting:"interval"`
	BatchSize    int           `setting:"batch-size"`
	Timestamps   string        `setting:"timestamps"`     // "now" or "csv"
	Speed        float64       `setting:"speed"`          // with Timestamps "now": replay pace; 0 = unpaced
	ExitWhenDone bool          `setting:"exit-when-done"` // a one-shot import: stop once the CSV is streamed and stored
	// Shard is this streamer's share of the GPUs: ShardIndex of ShardCount (0 of 1: all).
	ShardIndex, ShardCount int

	// Live sources. The bundled sample streams only when no source is named: no CSV, no
	// scrape target, no remote_write receiver.
	ScrapeTargets     []string      `setting:"scrape-targets"`
	ScrapeTargetsFile string        `setting:"scrape-targets-file"`
	ScrapeDNS         []string      `setting:"scrape-dns"`
	ScrapeInterval    time.Duration `setting:"scrape-interval"`
	ScrapeTimeout     time.Duration `setting:"scrape-timeout"`
	ScrapeJob         string        `setting:"scrape-job"`
	// ScrapeBodySizeLimit bounds a scrape's body, decompressed, in bytes.
	ScrapeBodySizeLimit int `setting:"scrape-body-size-limit"`
	// RemoteWriteMaxBody bounds a remote_write body, compressed and decompressed, in bytes.
	RemoteWriteMaxBody int           `setting:"remote-write-max-body"`
	RemoteWrite        bool          `setting:"remote-write"`
	RemoteWriteTimeout time.Duration `setting:"remote-write-timeout"`
	// RemoteWriteMaxConcurrency bounds the requests received at once; 0: two per core.
	RemoteWriteMaxConcurrency int `setting:"remote-write-max-concurrency"`
	// RemoteWriteMaxNewDevices bounds the new devices a sender brings a minute; 0: no limit.
	RemoteWriteMaxNewDevices int `setting:"remote-write-max-new-devices"`

	RedisURL   string `setting:"redis-url"` // "" uses the in-process queue (mode all only)
	QueueName  string `setting:"queue-name"`
	MaxBacklog int    `setting:"max-backlog"`
	// RedisMinReplicas is how many Redis replicas must hold a batch before it is published.
	RedisMinReplicas int  `setting:"redis-min-replicas"`
	QueueUI          bool `setting:"queue-ui"`

	// PromQLSubqueryStep is the step of a PromQL subquery written without one ([10m:]).
	PromQLSubqueryStep time.Duration `setting:"promql-subquery-step"`

	// FutureTolerance is how far ahead of the clock a sample's own time may be.
	FutureTolerance time.Duration `setting:"future-tolerance"`

	// PromQL API limits: queries evaluated at once (0: one per core), the longest query,
	// its deepest nesting and the samples one query may hold.
	PromQLMaxConcurrency int `setting:"promql-max-concurrency"`
	PromQLMaxQueryLength int `setting:"promql-max-query-length"`
	PromQLMaxDepth       int `setting:"promql-max-depth"`
	PromQLMaxSamples     int `setting:"promql-max-samples"`

	WebConfigFile string `setting:"web-config-file"` // "" serves plain HTTP without authentication

	// XIDCatalog is a file of XID codes amending the catalog the project ships ("": none).
	XIDCatalog string `setting:"xid-catalog"`

	CollectorWorkers int           `setting:"collector-workers"`
	QueueCapacity    int           `setting:"queue-capacity"`
	CompactInterval  time.Duration `setting:"compact-interval"` // 0: collectors do not compact
	// Retention is how long samples are kept, Retention5m and Retention1h the downsampled
	// tiers: 0 forever, RetentionAuto by database kind.
	Retention, Retention5m, Retention1h time.Duration
	RetentionWorkloads                  time.Duration // closed workload records; 0 forever
	RetentionInterval                   time.Duration `setting:"retention-interval"`
	WorkloadInterval                    time.Duration `setting:"workload-interval"` // 0: collectors record no workloads
	ShutdownTimeout                     time.Duration `setting:"shutdown-timeout"`

	LogLevel  slog.Level
	LogFormat string `setting:"log-format"` // "text" or "json"

	// HealthCheck asks the process serving on HTTPAddr whether it is healthy instead of
	// running one: for container health checks in images without a shell.
	HealthCheck bool `setting:"health-check"`
}

// setting is one key: its flag, default and help. The env var is derived from the name.
type setting struct {
	name  string
	def   any
	usage string
}

var settings = []setting{
	{"mode", string(ModeAll), "what this process runs: all | streamer | collector | api | migrate"},
	{"http-addr", ":8080", "address of the HTTP server (REST API in modes all and api; /health and /ready in every mode)"},
	{"database-url", "", "postgres://user:pass@host:5432/db?sslmode=disable (several hosts, host1:5432,host2:5432, with target_session_attrs=read-write follow a failover) or sqlite:PATH (default " + DefaultSQLite + " in mode all; also DATABASE_URL or DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME/DB_SSL_MODE)"},
	{"database-read-url", "", "where the API's reads go, a streaming replica (postgres://…, target_session_attrs=standby or prefer-standby for several); none = --database-url. Reads lag the primary by the replica's delay"},
	{"db-connect-timeout", 15 * time.Second, "how long to keep retrying an unreachable database at start before giving up"},
	{"db-max-conns", 0, "PostgreSQL connections a process opens at most; 0 = two per CPU core (four at least) for the API, plus collector-workers + 2 for a collector and its compactor"},
	{"csv", "", "DCGM CSV file to stream (default: the bundled sample of 247 GPUs)"},
	{"loop", true, "start over at the end of the file, to simulate a live cluster"},
	{"passes", 0, "with --loop, stop after this many passes over the file; 0 = never (each pass gets fresh timestamps with --timestamps=now)"},
	{"interval", time.Duration(0), "least pause between two batches; 0 = none"},
	{"batch-size", 5000, "samples per batch"},
	{"timestamps", "now", "now: stamp the file's scrapes (rows sharing a timestamp) anew, keeping their spacing, as a live exporter would | csv: keep the file's timestamps and stream as fast as the queue takes them"},
	{"exit-when-done", false, "with --csv and --loop=false, exit once the file is streamed and stored (mode all) or published (mode streamer), printing what was stored, rejected and blank: a one-shot import"},
	{"speed", 1.0, "with --timestamps=now, replay at this multiple of the file's own pace (1 = a scrape when its time comes); 0 = as fast as the queue takes them"},
	{"shard", "0/1", "i/N: stream only the GPUs whose UUID hashes to i of N (0-based), when N streamers share a file; ordinal/N takes i from the host name's trailing number (a StatefulSet pod's ordinal)"},
	{"scrape-targets", "", "dcgm-exporter endpoints to scrape, comma-separated: host:port (…/metrics) or http(s) URLs; split among streamers by --shard"},
	{"scrape-targets-file", "", "Prometheus file_sd file (JSON or YAML: [{targets: [host:port], labels: {…}}]) of targets to scrape, re-read when it changes"},
	{"scrape-dns", "", "name:port, comma-separated: scrape every A/AAAA record of the name (a headless Kubernetes Service of dcgm-exporter pods), re-resolved every interval"},
	{"scrape-interval", 15 * time.Second, "how often each target is scraped"},
	{"scrape-timeout", time.Duration(0), "how long one scrape may take, at most the interval; 0 = 10s, or the interval when it is shorter (as in Prometheus)"},
	{"scrape-job", "dcgm-exporter", "the job label of scraped series"},
	{"scrape-body-size-limit", 16 << 20, "the largest scrape body, in bytes once decompressed (as vmagent's -promscrape.maxScrapeSize and Prometheus' body_size_limit; dcgm-exporter serves ~100 kB for 8 GPUs): a larger one fails the scrape, the target down saying why, and none of it is stored"},
	{"remote-write", false, "receive Prometheus remote_write 1.0 at POST /api/v1/write on --http-addr (modes all and streamer)"},
	{"remote-write-max-body", 32 << 20, "the largest remote_write request body, in bytes, compressed and decompressed; a larger one gets 400"},
	{"remote-write-timeout", 10 * time.Second, "how long a remote_write request waits for the queue before it is answered 503 and retried by its sender (keep it under the sender's remote_timeout, 30s in Prometheus)"},
	{"remote-write-max-concurrency", 0, "remote_write requests received at once (as VictoriaMetrics' -maxConcurrentInserts), each holding its body and a batch of samples in memory; the others wait within --remote-write-timeout, then get 503, which Prometheus retries; 0 = two per core"},
	{"remote-write-max-new-devices", 10000, "devices not seen before that one remote_write sender (user, token or address) may bring a minute; a request past it gets 503 and is retried, so a fleet larger than this comes in over a few minutes; 0 = no limit"},
	{"redis-url", "", "Redis for the queue between processes: redis://[:password@]host:6379/0, redis-sentinel://[:password@]host:26379,host:26379/mymaster/0 (the primary a Sentinel set names), redis-cluster://[:password@]host:6379,host:6379; rediss, rediss-sentinel, rediss-cluster for TLS (also REDIS_URL); required by modes streamer and collector, optional in mode all"},
	{"redis-min-replicas", 0, "replicas that must hold a batch before a publish counts as done (Redis WAIT): 1 with Sentinel keeps what was published through a failover; not for a cluster"},
	{"queue-name", "telemetry", "name of the queue in Redis, shared by the streamers and collectors of one pipeline"},
	{"max-backlog", 100, "batches waiting in Redis before streamers pause (backpressure); 0 = no limit"},
	{"web-config-file", "", "web config file of the HTTP server, in exporter-toolkit's format (tls_server_config, basic_auth_users with bcrypt hashes) plus roles and bearer_tokens (see docs/operations.md); none = plain HTTP open to all, queue UI read-only"},
	{"xid-catalog", "", "a JSON file of XID codes — [{code, mnemonic, description, class (app, driver, hardware), action (none, restart_app, reset_gpu, reboot_node, isolate)}] — in place of the shipped catalog's entries of the same codes, for health events (see docs/api.md); none = NVIDIA's XID catalog as shipped"},
	{"future-tolerance", 10 * time.Minute, "samples stamped more than this ahead of the clock are refused and counted, at every source that keeps its own times (scrapes, remote_write, --csv with --timestamps=csv)"},
	{"promql-max-concurrency", 0, "PromQL requests evaluated at once (as Prometheus' --query.max-concurrency); the others wait 10s at most, then get 503; 0 = one per core, so that a cheap REST request finds a core while heavy queries run"},
	{"promql-max-query-length", 16384, "the longest PromQL query accepted, in bytes (as VictoriaMetrics' -search.maxQueryLen); a longer one gets 400"},
	{"promql-max-depth", 128, "the deepest PromQL expression accepted (parentheses, operators and calls nested): evaluation grows with it; a deeper one gets 400"},
	{"promql-max-samples", 2000000, "samples one PromQL query may hold at once, read from the store or evaluated (as Prometheus' --query.max-samples, 50000000 there: a query near the limit takes ~32 bytes a sample, and four at once must fit an API pod of 512 MiB; a panel of 1,000 GPUs at 2,000 points fits); past it, 422"},
	{"promql-subquery-step", time.Minute, "the step of a PromQL subquery written without one, avg_over_time(x[10m:]): Prometheus takes its global evaluation interval, 1m by default"},
	{"queue-ui", false, "serve the asynqmon web UI for the Redis queue at /queues (modes all and api)"},
	{"collector-workers", 3, "database writes a collector runs at once; each takes the batches waiting (a collector handles four per write from the queue), so that batches arriving together are written together"},
	{"queue-capacity", 16, "batches the in-process queue holds before the streamer waits (backpressure)"},
	{"retention", "auto", "how long samples are kept, counted back from the newest (never from later than now), e.g. 15d, 36h; auto = 15d on PostgreSQL, 1d on SQLite (the embedded default stays small); 0 = forever"},
	{"retention-5m", "auto", "how long the 5-minute tier (count, sum, min, max, first, last of each series every 5 minutes) is kept; auto = 90d on PostgreSQL, 7d on SQLite; 0 = forever"},
	{"retention-1h", "auto", "how long the hourly tier is kept; auto = 2y on PostgreSQL, 90d on SQLite; 0 = forever"},
	{"retention-workloads", "2y", "how long workload records (who held which GPU, when, how well) are kept after the hold ended; 0 = forever"},
	{"retention-interval", time.Minute, "how often a collector prunes what retention lets go"},
	{"workload-interval", time.Minute, "how often a collector records the workloads' holds on devices from the samples that settled; 0 = never (and samples no longer wait for it)"},
	{"compact-interval", 5 * time.Second, "how often a collector merges the small chunks batches write and packs each device's two-hour windows that are over into blocks; 0 = never"},
	{"shutdown-timeout", 30 * time.Second, "how long a graceful shutdown may take (draining the queue included)"},
	{"log-level", "info", "debug | info | warn | error"},
	{"log-format", "text", "text | json"},
	{"health-check", false, "ask the process serving on --http-addr for /health and exit 0 when it answers (for container health checks)"},
}

// redisSchemes are the schemes of --redis-url (the queue adapter's ParseURL reads them).
var redisSchemes = []string{"redis", "rediss", "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster"}

// EnvName is the environment variable of a setting.
func EnvName(key string) string {
	return "TELEMETRY_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// ErrHelp is returned by Load after it printed the help text.
var ErrHelp = pflag.ErrHelp

// Load reads the settings from args (without the program name), the environment and the
// optional config file, and validates them. The error names every problem found. --help
// prints the help text to out and returns ErrHelp.
func Load(args []string, out io.Writer) (Config, error) {
	v, err := parse(args, out, settings, usage)
	if err != nil {
		return Config{}, err
	}
	return fromViper(v)
}

// parse reads args, the environment and the config file into a viper holding every setting
// of table.
func parse(args []string, out io.Writer, table []setting, usage func(io.Writer, *pflag.FlagSet)) (*viper.Viper, error) {
	v := viper.New()
	fs := pflag.NewFlagSet("telemetry", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	for _, s := range table {
		v.SetDefault(s.name, s.def)
		usage := s.usage + " [" + EnvName(s.name) + "]"
		switch d := s.def.(type) {
		case string:
			fs.String(s.name, d, usage)
		case bool:
			fs.Bool(s.name, d, usage)
		case int:
			fs.Int(s.name, d, usage)
		case float64:
			fs.Float64(s.name, d, usage)
		case time.Duration:
			fs.Duration(s.name, d, usage)
		}
	}
	configFile := fs.String("config", os.Getenv("TELEMETRY_CONFIG"), "optional config file (YAML, JSON or TOML) with the same keys [TELEMETRY_CONFIG]")
	fs.Usage = func() { usage(out, fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, fmt.Errorf("%w (see --help)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	if err := v.BindPFlags(fs); err != nil {
		return nil, err
	}
	v.SetEnvPrefix("TELEMETRY")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if *configFile != "" {
		v.SetConfigFile(*configFile)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config file %s: %w", *configFile, err)
		}
	}
	return v, nil
}

func fromViper(v *viper.Viper) (Config, error) {
	var c Config
	problems := fill(&c, v)
	c.Mode = Mode(strings.ToLower(string(c.Mode)))
	c.Timestamps, c.LogFormat = strings.ToLower(c.Timestamps), strings.ToLower(c.LogFormat)
	if c.RedisURL == "" {
		c.RedisURL = os.Getenv("REDIS_URL")
	}
	for name, dst := range map[string]*time.Duration{"retention": &c.Retention, "retention-5m": &c.Retention5m, "retention-1h": &c.Retention1h,
		"retention-workloads": &c.RetentionWorkloads} {
		if r := strings.TrimSpace(strings.ToLower(v.GetString(name))); r == "auto" && name != "retention-workloads" {
			*dst = RetentionAuto
		} else if d, err := parseRetention(r); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", name, err))
		} else {
			*dst = d
		}
	}
	if err := c.LogLevel.UnmarshalText([]byte(v.GetString("log-level"))); err != nil {
		problems = append(problems, fmt.Errorf("log-level: %q is not debug, info, warn or error", v.GetString("log-level")))
	}
	var err error
	if c.ShardIndex, c.ShardCount, err = parseShard(v.GetString("shard")); err != nil {
		problems = append(problems, err)
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = databaseURLFromEnv()
	}
	if c.DatabaseURL == "" && c.Mode == ModeAll {
		c.DatabaseURL = DefaultSQLite
	}
	if c.ScrapeTimeout == 0 && c.ScrapeInterval > 0 {
		c.ScrapeTimeout = min(10*time.Second, c.ScrapeInterval)
	}
	problems = append(problems, c.validate()...)
	if len(problems) > 0 {
		return c, &Error{Problems: problems}
	}
	return c, nil
}

// fill sets each field of c tagged `setting:"<key>"` from that key, read as the field's
// type: the settings table names each key once, and the struct says where it goes. The
// settings with rules of their own (retention, log-level, shard) are read by fromViper.
func fill(c *Config, v *viper.Viper) (problems []error) {
	rv := reflect.ValueOf(c).Elem()
	for i := range rv.NumField() {
		key := rv.Type().Field(i).Tag.Get("setting")
		if key == "" {
			continue
		}
		raw := strings.TrimSpace(v.GetString(key))
		switch f := rv.Field(i).Addr().Interface().(type) {
		case *time.Duration:
			d, err := parseDuration(raw)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", key, err))
			}
			*f = d
		case *float64:
			n, err := strconv.ParseFloat(raw, 64)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %q is not a number", key, raw))
			}
			*f = n
		case *int:
			n, err := strconv.Atoi(raw)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %q is not a whole number", key, raw))
			}
			*f = n
		case *bool:
			*f = v.GetBool(key)
		case *[]string:
			*f = list(raw)
		case *string:
			*f = v.GetString(key)
		case *Mode:
			*f = Mode(v.GetString(key))
		default:
			panic(fmt.Sprintf("config: field %s has a type fill does not read", rv.Type().Field(i).Name))
		}
	}
	return problems
}

// list splits a comma-separated setting, dropping empty items.
func list(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Scrapes reports whether any scrape target source is configured.
func (c Config) Scrapes() bool {
	return len(c.ScrapeTargets) > 0 || c.ScrapeTargetsFile != "" || len(c.ScrapeDNS) > 0
}

// Bundled reports whether the bundled sample streams: when no source is named.
func (c Config) Bundled() bool { return c.CSV == "" && !c.Scrapes() && !c.RemoteWrite }

// parseShard reads i/N, or ordinal/N where i is the trailing number of the host name, as in
// a Kubernetes StatefulSet pod "telemetry-streamer-2".
func parseShard(s string) (index, count int, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "ordinal/")
	if !ok {
		return parseIndexOf(s)
	}
	host, err := os.Hostname()
	if err != nil {
		return 0, 0, fmt.Errorf("shard: %w", err)
	}
	ordinal := host[strings.LastIndexByte(host, '-')+1:]
	if _, err := strconv.Atoi(ordinal); err != nil {
		return 0, 0, fmt.Errorf("shard: %q takes the ordinal from the host name, but %q does not end in -NUMBER", s, host)
	}
	return parseIndexOf(ordinal + "/" + rest)
}

// parseIndexOf reads "i/N" with 0 ≤ i < N.
func parseIndexOf(s string) (index, count int, err error) {
	i, n, ok := strings.Cut(s, "/")
	index, err1 := strconv.Atoi(strings.TrimSpace(i))
	count, err2 := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err1 != nil || err2 != nil || count < 1 || index < 0 || index >= count {
		return 0, 0, fmt.Errorf("shard: %q is not i/N with 0 ≤ i < N, e.g. 0/1 or 2/3", s)
	}
	return index, count, nil
}

// parseDuration accepts Go durations ("1s", "250ms") and, for convenience, bare seconds.
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	var secs float64
	if _, err := fmt.Sscanf(s, "%g", &secs); err == nil && fmt.Sprint(secs) == strings.TrimSpace(s) {
		return time.Duration(secs * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("%q is not a duration such as 500ms, 2s or 1m", s)
}

// RetentionAuto asks for the database kind's default retention.
const RetentionAuto time.Duration = -1

// Retention defaults by database kind: raw samples, the 5-minute tier, the hourly tier.
const (
	DefaultRetentionPostgres   = 15 * 24 * time.Hour
	DefaultRetentionSQLite     = 24 * time.Hour
	DefaultRetention5mPostgres = 90 * 24 * time.Hour
	DefaultRetention5mSQLite   = 7 * 24 * time.Hour
	DefaultRetention1hPostgres = 2 * 365 * 24 * time.Hour
	DefaultRetention1hSQLite   = 90 * 24 * time.Hour
)

// parseRetention reads a retention as Prometheus writes its own (15d, 2w, 36h, 1h30m) or
// as any duration setting; 0 keeps samples forever.
func parseRetention(s string) (time.Duration, error) {
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	d, err := parseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 15d, 36h or 0 (forever), nor auto", s)
	}
	return d, nil
}

// databaseURLFromEnv reads the conventional DATABASE_URL, then DB_HOST and friends.
func databaseURLFromEnv() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	host := os.Getenv("DB_HOST")
	if host == "" {
		return ""
	}
	get := func(key, def string) string {
		if v := os.Getenv(key); v != "" {
			return v
		}
		return def
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(get("DB_USER", "postgres"), os.Getenv("DB_PASSWORD")),
		Host:     host + ":" + get("DB_PORT", "5432"),
		Path:     "/" + get("DB_NAME", "telemetry"),
		RawQuery: "sslmode=" + get("DB_SSL_MODE", "disable"),
	}
	if os.Getenv("DB_PASSWORD") == "" {
		u.User = url.User(get("DB_USER", "postgres"))
	}
	return u.String()
}

// Error lists every problem of a configuration.
type Error struct {
	Problems []error
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return "invalid configuration: " + strings.Join(msgs, "; ")
}

func (c Config) validate() []error {
	var problems []error
	bad := func(key, format string, args ...any) {
		problems = append(problems, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	// Numbers with a least value: durations and counts that must be positive (1) or not
	// negative (0).
	for _, n := range []struct {
		key          string
		value, least int64
	}{
		{"redis-min-replicas", int64(c.RedisMinReplicas), 0},
		{"promql-subquery-step", int64(c.PromQLSubqueryStep), 1},
		{"future-tolerance", int64(c.FutureTolerance), 1},
		{"remote-write-max-concurrency", int64(c.RemoteWriteMaxConcurrency), 0},
		{"remote-write-max-new-devices", int64(c.RemoteWriteMaxNewDevices), 0},
		{"remote-write-max-body", int64(c.RemoteWriteMaxBody), 1},
		{"scrape-body-size-limit", int64(c.ScrapeBodySizeLimit), 1},
		{"promql-max-concurrency", int64(c.PromQLMaxConcurrency), 0},
		{"promql-max-query-length", int64(c.PromQLMaxQueryLength), 1},
		{"promql-max-depth", int64(c.PromQLMaxDepth), 1},
		{"promql-max-samples", int64(c.PromQLMaxSamples), 1},
		{"max-backlog", int64(c.MaxBacklog), 0},
		{"passes", int64(c.Passes), 0},
		{"interval", int64(c.Interval), 0},
		{"retention-interval", int64(c.RetentionInterval), 1},
		{"compact-interval", int64(c.CompactInterval), 0},
		{"workload-interval", int64(c.WorkloadInterval), 0},
		{"shutdown-timeout", int64(c.ShutdownTimeout), 1},
		{"db-connect-timeout", int64(c.DBConnectTimeout), 1},
		{"db-max-conns", int64(c.DBMaxConns), 0},
		{"remote-write-timeout", int64(c.RemoteWriteTimeout), 1},
		{"scrape-interval", int64(c.ScrapeInterval), 1},
	} {
		switch {
		case n.value < n.least && n.least > 0:
			bad(n.key, "must be positive")
		case n.value < n.least:
			bad(n.key, "must not be negative")
		}
	}
	switch c.Mode {
	case ModeAll, ModeAPI, ModeStreamer, ModeCollector, ModeMigrate:
	default:
		bad("mode", "%q is not one of all, streamer, collector, api, migrate", c.Mode)
	}
	if (c.Mode == ModeAPI || c.Mode == ModeCollector || c.Mode == ModeMigrate) && c.DatabaseURL == "" {
		bad("database-url", "mode %s needs a database (postgres://… or sqlite:PATH)", c.Mode)
	}
	if (c.Mode == ModeStreamer || c.Mode == ModeCollector) && c.RedisURL == "" {
		bad("redis-url", "mode %s needs the Redis queue (redis://host:6379/0)", c.Mode)
	}
	if scheme, _, _ := strings.Cut(c.RedisURL, "://"); c.RedisURL != "" && !slices.Contains(redisSchemes, scheme) {
		bad("redis-url", "want redis://…, rediss://…, redis-sentinel://…/master or redis-cluster://… (s for TLS, as rediss-sentinel://)")
	}
	if c.QueueUI && c.RedisURL == "" {
		bad("queue-ui", "needs --redis-url")
	}
	if c.QueueName == "" {
		bad("queue-name", "is empty")
	}
	if u := c.DatabaseReadURL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		bad("database-read-url", "want postgres://… (a replica of --database-url)")
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgresql://") && !strings.HasPrefix(c.DatabaseURL, "sqlite:") {
		bad("database-url", "want postgres://… or sqlite:PATH")
	}
	if c.HTTPAddr == "" {
		bad("http-addr", "is empty")
	}
	if c.BatchSize < 1 || c.BatchSize > 100_000 {
		bad("batch-size", "must be between 1 and 100000, got %d", c.BatchSize)
	}
	if c.ExitWhenDone && (c.CSV == "" || c.Loop || (c.Mode != ModeAll && c.Mode != ModeStreamer)) {
		bad("exit-when-done", "needs --csv=FILE and --loop=false, in mode all or streamer")
	}
	if c.CSV != "" {
		if info, err := os.Stat(c.CSV); err != nil {
			bad("csv", "%v", err) // before any server is reached
		} else if info.IsDir() {
			bad("csv", "%s is a directory", c.CSV)
		}
	}
	if c.Speed < 0 || math.IsInf(c.Speed, 0) || math.IsNaN(c.Speed) {
		bad("speed", "must be 0 or more")
	}
	if c.Timestamps != "now" && c.Timestamps != "csv" {
		bad("timestamps", "%q is not now or csv", c.Timestamps)
	}
	if c.CollectorWorkers < 1 {
		bad("collector-workers", "must be at least 1")
	}
	if c.QueueCapacity < 1 {
		bad("queue-capacity", "must be at least 1")
	}
	if c.ScrapeTimeout < 0 || c.ScrapeTimeout > c.ScrapeInterval {
		bad("scrape-timeout", "must be at most scrape-interval (%s)", c.ScrapeInterval)
	}
	if c.ScrapeJob == "" {
		bad("scrape-job", "is empty")
	}
	if (c.Scrapes() || c.RemoteWrite) && c.Mode != ModeAll && c.Mode != ModeStreamer {
		bad("mode", "scraping and remote_write run in modes all and streamer, not %s", c.Mode)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "%q is not text or json", c.LogFormat)
	}
	return problems
}

func usage(out io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(out, `telemetry — an elastic GPU telemetry pipeline: DCGM telemetry (CSV files, dcgm-exporter
scrapes, Prometheus remote_write) → queue → database → REST API.

Usage:
  telemetry [flags]
  telemetry simulate [flags]   serve a simulated fleet of dcgm-exporters (see simulate --help)
  telemetry hash-password      read a password on stdin, print its bcrypt hash for the web
                               config's basic_auth_users

Modes (--mode):
  all        everything in one process: streamer → queue → collector → store, and the
             REST API (default; an embedded SQLite file and an in-process queue, no servers
             needed; with --redis-url and a postgres:// database it runs the split pipeline)
  streamer   read the sources (CSV, scrape targets, remote_write) and publish batches to
             the Redis queue (--redis-url)
  collector  consume batches from Redis and store them in the database
  api        serve the REST API from the database
  migrate    apply the database migrations and exit (every mode also migrates at start)

Sources: --csv, --scrape-targets / --scrape-targets-file / --scrape-dns and --remote-write,
several at once allowed. With none named, telemetry streams its bundled sample (247 GPUs on
31 hosts) in a loop into %s and serves http://localhost:8080/api/v1/gpus and
/swagger/index.html.

Security: with --web-config-file, HTTPS and users or tokens with roles (read: API and queue
UI to look at; write: also remote_write; admin: also the queue UI's actions). /health and
/ready stay open. Without it, HTTP is open to all and the queue UI is read-only.

Flags (each also read from the environment variable in brackets):
%s`, DefaultSQLite, fs.FlagUsages())
}

// Simulate is the settings of telemetry simulate: a fleet of simulated dcgm-exporters.
type Simulate struct {
	CSV         string // "" simulates the bundled sample's fleet
	Listen      string // host:port of the first host; host i listens on port + i
	MIG         int
	Pods        bool
	TimeSliced  int // pods sharing the second host's first GPU
	BadLine     bool
	Hosts       int // 0: the CSV's own
	TargetsFile string
	Advertise   string // host written to TargetsFile; "" is Listen's
	LogLevel    slog.Level
}

var simulateSettings = []setting{
	{"csv", "", "DCGM CSV whose fleet to simulate (default: the bundled sample, 247 GPUs on 31 hosts)"},
	{"listen", "127.0.0.1:9400", "address of the first host's exporter; host i listens on the port after i"},
	{"mig", 7, "partition the first GPU of the first host into this many MIG instances (0-7), which report DCGM_FI_PROF_GR_ENGINE_ACTIVE and no DCGM_FI_DEV_GPU_UTIL, as real ones"},
	{"time-sliced", 3, "with --pods, the second host's first GPU is shared by this many pods (time-slicing), reported once per pod; 0 = none"},
	{"bad-line", false, "add to the first host's exposition a line whose value is not a number, as dcgm-exporter before 4.6 writes for fields it cannot read"},
	{"pods", true, "attribute every other GPU and every MIG instance to a pod, namespace and container; the third host's first two GPUs to one pod, the fourth's first to a notebook that holds it idle 45 minutes an hour (the fifth's first GPU has XID 79 and thermal throttling some minutes an hour)"},
	{"hosts", 0, "simulate this many hosts: the CSV's, then copies of its fleet with UUIDs and host names of their own; 0 = the CSV's"},
	{"targets-file", "", "write the hosts' addresses to this Prometheus file_sd file (for --scrape-targets-file or a Prometheus)"},
	{"advertise", "", "host name or address the targets file gives, when scrapers reach this host by another name than --listen's (a compose service name)"},
	{"log-level", "info", "debug | info | warn | error"},
}

// LoadSimulate reads the settings of telemetry simulate, as Load does.
func LoadSimulate(args []string, out io.Writer) (Simulate, error) {
	v, err := parse(args, out, simulateSettings, func(out io.Writer, fs *pflag.FlagSet) {
		fmt.Fprintf(out, `telemetry simulate — serve a simulated fleet of dcgm-exporters, one per host, each on its
own port (/metrics), with values moving over time: a live source for telemetry's scraper,
or for a Prometheus that remote-writes to it.

Usage:
  telemetry simulate [flags]

Flags (each also read from the environment variable in brackets):
%s`, fs.FlagUsages())
	})
	if err != nil {
		return Simulate{}, err
	}
	c := Simulate{CSV: v.GetString("csv"), Listen: v.GetString("listen"), MIG: v.GetInt("mig"), Pods: v.GetBool("pods"),
		TimeSliced: v.GetInt("time-sliced"), BadLine: v.GetBool("bad-line"),
		Hosts: v.GetInt("hosts"), TargetsFile: v.GetString("targets-file"), Advertise: v.GetString("advertise")}
	var problems []error
	if err := c.LogLevel.UnmarshalText([]byte(v.GetString("log-level"))); err != nil {
		problems = append(problems, fmt.Errorf("log-level: %q is not debug, info, warn or error", v.GetString("log-level")))
	}
	if c.MIG < 0 || c.MIG > 7 {
		problems = append(problems, fmt.Errorf("mig: must be between 0 and 7, got %d", c.MIG))
	}
	if c.Hosts < 0 || c.Hosts > 10000 {
		problems = append(problems, fmt.Errorf("hosts: must be between 0 and 10000, got %d", c.Hosts))
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		problems = append(problems, fmt.Errorf("listen: %q is not host:port", c.Listen))
	} else if _, err := strconv.Atoi(port); err != nil {
		problems = append(problems, fmt.Errorf("listen: port %q is not a number", port))
	}
	if len(problems) > 0 {
		return c, &Error{Problems: problems}
	}
	return c, nil
}
