// Package promapi answers Prometheus' HTTP query API — query, query_range, series, labels
// and label values, GET or form POST, in Prometheus' JSON envelope and error shape — over
// the store, so that Grafana's Prometheus data source and dashboards written for Prometheus
// work unchanged. PromQL is evaluated by the Prometheus project's own engine over Queryable;
// nothing here evaluates PromQL.
package promapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Options configure the API.
type Options struct {
	Queryable *Queryable
	// Timeout bounds a query's evaluation; 0 means 2 minutes, as Prometheus'.
	Timeout time.Duration
	// LookbackDelta is how far back an instant looks for a sample; 0 means 5 minutes.
	LookbackDelta time.Duration
	// SubqueryStep is the step of a subquery written without one, x[10m:]; 0 means 1
	// minute, Prometheus' default evaluation interval.
	SubqueryStep time.Duration
	// MaxConcurrency bounds the requests evaluated at once, as Prometheus'
	// --query.max-concurrency; the others wait QueueWait at most, then get 503. 0 means one
	// per core: a query evaluating takes a core, and more at once would take the memory and
	// the latency of every other request (docs/performance.md has the trade-off).
	MaxConcurrency int
	// QueueWait is how long a request waits for its turn; 0 means 10 seconds.
	QueueWait time.Duration
	// MaxQueryLength bounds a query's text in bytes, as VictoriaMetrics' -search.maxQueryLen;
	// parsing, which no timeout stops, then takes milliseconds at most. 0 means 16 KiB.
	MaxQueryLength int
	// MaxDepth bounds how deeply a query's expression nests (parentheses, operators, calls):
	// evaluating 1+1+…+1 grows faster than its terms. 0 means 128.
	MaxDepth int
	// MaxSamples bounds the samples a query holds at once, counted as they are read from the
	// store and as they are evaluated, as Prometheus' --query.max-samples: a query's memory
	// is in proportion to it, whatever the data. 0 means 2,000,000 (~64 MB).
	MaxSamples int
	Logger     *slog.Logger
}

// API is the handler of Prometheus' /api/v1 query routes.
type API struct {
	opts      Options
	queryable limited // opts.Queryable, each query reading opts.MaxSamples at most
	engine    *promql.Engine
	mux       *http.ServeMux
	slots     chan struct{} // a request being evaluated holds one
}

// New returns the API; its routes are /api/v1/query, /api/v1/query_range, /api/v1/series,
// /api/v1/labels and /api/v1/label/{name}/values.
func New(opts Options) *API {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.LookbackDelta <= 0 {
		opts.LookbackDelta = 5 * time.Minute
	}
	if opts.SubqueryStep <= 0 {
		opts.SubqueryStep = time.Minute
	}
	if opts.MaxConcurrency <= 0 {
		opts.MaxConcurrency = runtime.GOMAXPROCS(0)
	}
	if opts.QueueWait <= 0 {
		opts.QueueWait = 10 * time.Second
	}
	if opts.MaxQueryLength <= 0 {
		opts.MaxQueryLength = 16 << 10
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = 128
	}
	if opts.MaxSamples <= 0 {
		opts.MaxSamples = 2_000_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{opts: opts, mux: http.NewServeMux(), slots: make(chan struct{}, opts.MaxConcurrency),
		queryable: limited{q: opts.Queryable, maxSamples: opts.MaxSamples}}
	a.engine = promql.NewEngine(promql.EngineOpts{
		Logger: opts.Logger, MaxSamples: opts.MaxSamples, Timeout: opts.Timeout, LookbackDelta: opts.LookbackDelta,
		Parser:           depthParser{Parser: parser.NewParser(parser.Options{}), max: opts.MaxDepth},
		EnableAtModifier: true, EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 { return opts.SubqueryStep.Milliseconds() },
	})
	for path, h := range map[string]func(*http.Request) (any, error){
		"/api/v1/query":               a.query,
		"/api/v1/query_range":         a.queryRange,
		"/api/v1/series":              a.series,
		"/api/v1/labels":              a.labelNames,
		"/api/v1/label/{name}/values": a.labelValues,
	} {
		a.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, POST")
				writeError(w, errorf(errMethod, "method %s not allowed: GET or POST", r.Method))
				return
			}
			if err := r.ParseForm(); err != nil {
				writeError(w, errorf(errBadData, "cannot read the form: %v", err))
				return
			}
			if q := r.FormValue("query"); len(q) > a.opts.MaxQueryLength {
				writeError(w, errorf(errBadData, "the query is %d bytes long, more than the %d the API takes", len(q), a.opts.MaxQueryLength))
				return
			}
			release, err := a.admit(r.Context())
			if err != nil {
				w.Header().Set("Retry-After", "5")
				writeError(w, err)
				return
			}
			data, err := a.handle(h, r)
			release()
			if err != nil {
				writeError(w, err)
				return
			}
			if qd, ok := data.(queryData); ok {
				writeQueryData(w, qd)
				return
			}
			writeJSON(w, http.StatusOK, success{Status: "success", Data: data})
		})
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{typ: errNotFound, err: fmt.Errorf("no route %s: the query API serves /api/v1/query, query_range, series, labels and label/{name}/values", r.URL.Path)})
	})
	return a
}

// depthParser is the engine's parser refusing expressions nested deeper than max.
type depthParser struct {
	parser.Parser
	max int
}

func (p depthParser) ParseExpr(input string) (parser.Expr, error) {
	expr, err := p.Parser.ParseExpr(input)
	if err != nil {
		return expr, err
	}
	err = parser.Walk(depthLimit{max: p.max}, expr, nil)
	return expr, err
}

// depthLimit walks an expression and fails at the first node nested deeper than max.
type depthLimit struct{ max int }

func (d depthLimit) Visit(node parser.Node, path []parser.Node) (parser.Visitor, error) {
	if len(path) >= d.max {
		return nil, fmt.Errorf("the query nests more than %d expressions deep (--promql-max-depth)", d.max)
	}
	return d, nil
}

// admit waits for one of the slots of MaxConcurrency, QueueWait at most, and returns what
// frees it; unavailable (503, which Grafana retries) when none comes in time, canceled
// when the client leaves first.
func (a *API) admit(ctx context.Context) (func(), error) {
	release := func() { <-a.slots }
	select {
	case a.slots <- struct{}{}:
		return release, nil
	default:
	}
	timer := time.NewTimer(a.opts.QueueWait)
	defer timer.Stop()
	select {
	case a.slots <- struct{}{}:
		return release, nil
	case <-timer.C:
		return nil, errorf(errUnavailable, "%d queries are running, the most at once (--promql-max-concurrency), and none ended within %s", cap(a.slots), a.opts.QueueWait)
	case <-ctx.Done():
		return nil, &apiError{typ: errCanceled, err: ctx.Err()}
	}
}

// handle runs h, turning a panic in it — the engine's preparation of a query runs outside
// the engine's own recovery — into an execution error, as Prometheus answers one that
// fails while evaluated: a query a client sent never gets a bare 500.
func (a *API) handle(h func(*http.Request) (any, error), r *http.Request) (data any, err error) {
	defer func() {
		if p := recover(); p != nil {
			a.opts.Logger.ErrorContext(r.Context(), "PromQL query failed unexpectedly", "query", r.FormValue("query"), "panic", p)
			data, err = nil, errorf(errExecution, "unexpected error: %v", p)
		}
	}()
	return h(r)
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// success and failure are Prometheus' envelope, its fields in its order.
type success struct {
	Status string `json:"status"`
	Data   any    `json:"data"`
}

type failure struct {
	Status    string    `json:"status"`
	ErrorType errorType `json:"errorType"`
	Error     string    `json:"error"`
}

type queryData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     parser.Value     `json:"result"`
	// The envelope's, beside data: how the answer was read (a tier), what may be off.
	warnings, infos []string
}

func (a *API) query(r *http.Request) (any, error) {
	ts, err := timeParam(r, "time", time.Now())
	if err != nil {
		return nil, err
	}
	ctx, cancel, err := a.timeout(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	queryable, err := a.queryableFor(r)
	if err != nil {
		return nil, err
	}
	q, err := a.engine.NewInstantQuery(ctx, queryable, nil, r.FormValue("query"), ts)
	if err != nil {
		return nil, &apiError{typ: errBadData, err: err}
	}
	return a.run(ctx, q, r.FormValue("query"))
}

func (a *API) queryRange(r *http.Request) (any, error) {
	start, err := timeParam(r, "start", time.Time{})
	if err != nil {
		return nil, err
	}
	end, err := timeParam(r, "end", time.Time{})
	if err != nil {
		return nil, err
	}
	if start.IsZero() || end.IsZero() {
		return nil, errorf(errBadData, "start and end are required")
	}
	if end.Before(start) {
		return nil, errorf(errBadData, "end timestamp must not be before start time")
	}
	step, err := durationParam(r, "step")
	if err != nil {
		return nil, err
	}
	if step <= 0 {
		return nil, errorf(errBadData, "zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	// As Prometheus: no more than 11,000 points a series.
	if end.Sub(start)/step > 11000 {
		return nil, errorf(errBadData, "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
	}
	queryable, err := a.queryableFor(r)
	if err != nil {
		return nil, err
	}
	ctx, cancel, err := a.timeout(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	q, err := a.engine.NewRangeQuery(ctx, queryable, nil, r.FormValue("query"), start, end, step)
	if err != nil {
		return nil, &apiError{typ: errBadData, err: err}
	}
	return a.run(ctx, q, r.FormValue("query"))
}

// queryableFor is the store as a query reads it: through the downsampled tiers no coarser
// than its max_source_resolution parameter, as Thanos has it.
func (a *API) queryableFor(r *http.Request) (storage.Queryable, error) {
	maxRes, err := telemetry.ParseMaxResolution(r.FormValue("max_source_resolution"))
	if err != nil {
		return nil, errorf(errBadData, "%v", err)
	}
	l := a.queryable
	l.maxResolution = maxRes
	return l, nil
}

// maxAnnotations is how many warnings, and how many infos, an answer lists at most, as
// Prometheus' API by default.
const maxAnnotations = 10

func (a *API) run(ctx context.Context, q promql.Query, expr string) (any, error) {
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, execError(res.Err)
	}
	warnings, infos := res.Warnings.AsStrings(expr, maxAnnotations, maxAnnotations)
	return queryData{ResultType: res.Value.Type(), Result: res.Value, warnings: warnings, infos: infos}, nil
}

// timeout is the request's context, bounded by its timeout parameter when given.
func (a *API) timeout(r *http.Request) (context.Context, context.CancelFunc, error) {
	if r.FormValue("timeout") == "" {
		ctx, cancel := context.WithCancel(r.Context())
		return ctx, cancel, nil
	}
	d, err := durationParam(r, "timeout")
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}

func (a *API) series(r *http.Request) (any, error) {
	sets, err := matcherSets(r)
	if err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		return nil, errorf(errBadData, "no match[] parameter provided")
	}
	start, end, err := a.span(r)
	if err != nil {
		return nil, err
	}
	q, err := a.queryable.Querier(start, end)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	out := []labels.Labels{}
	seen := map[string]bool{}
	for _, ms := range sets {
		set := q.Select(r.Context(), true, seriesHints(start, end), ms...)
		for set.Next() {
			ls := set.At().Labels()
			if k := ls.String(); !seen[k] {
				seen[k] = true
				out = append(out, ls)
			}
		}
		if err := set.Err(); err != nil {
			return nil, execError(err)
		}
	}
	return out, nil
}

func (a *API) labelNames(r *http.Request) (any, error) {
	return a.labels(r, func(ctx context.Context, q storage.Querier, ms []*labels.Matcher) ([]string, error) {
		names, _, err := q.LabelNames(ctx, nil, ms...)
		return names, err
	})
}

func (a *API) labelValues(r *http.Request) (any, error) {
	name := r.PathValue("name")
	if name == "" || !utf8.ValidString(name) {
		return nil, errorf(errBadData, "invalid label name: %q", name)
	}
	return a.labels(r, func(ctx context.Context, q storage.Querier, ms []*labels.Matcher) ([]string, error) {
		values, _, err := q.LabelValues(ctx, name, nil, ms...)
		return values, err
	})
}

// labels answers with what read returns for every match[] set (or none), merged and sorted.
func (a *API) labels(r *http.Request, read func(context.Context, storage.Querier, []*labels.Matcher) ([]string, error)) (any, error) {
	sets, err := matcherSets(r)
	if err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	start, end, err := a.span(r)
	if err != nil {
		return nil, err
	}
	q, err := a.queryable.Querier(start, end)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	seen := map[string]bool{}
	for _, ms := range sets {
		vs, err := read(r.Context(), q, ms)
		if err != nil {
			return nil, execError(err)
		}
		for _, v := range vs {
			seen[v] = true
		}
	}
	return sortedKeys(seen), nil
}

// labelsWindow is the span series, labels and label values read when the request names no
// start: Prometheus answers them from its index over all time, but here they come from the
// samples (read, not kept, nor counted against MaxSamples), and all time would read every
// one of them. Grafana always names its dashboard's.
const labelsWindow = time.Hour

// span is the request's start and end in milliseconds: end defaults to now, start to
// labelsWindow before end.
func (a *API) span(r *http.Request) (start, end int64, err error) {
	e, err := timeParam(r, "end", time.Now())
	if err != nil {
		return 0, 0, err
	}
	s, err := timeParam(r, "start", e.Add(-labelsWindow))
	if err != nil {
		return 0, 0, err
	}
	return s.UnixMilli(), e.UnixMilli(), nil
}

func matcherSets(r *http.Request) ([][]*labels.Matcher, error) {
	var sets [][]*labels.Matcher
	for _, s := range r.Form["match[]"] {
		ms, err := selectors.ParseMetricSelector(s)
		if err != nil {
			return nil, &apiError{typ: errBadData, err: err}
		}
		sets = append(sets, ms)
	}
	return sets, nil
}

// selectors parses match[] parameters as the engine parses queries.
var selectors = parser.NewParser(parser.Options{})

// timeParam reads a time as Prometheus does: Unix seconds, fractions allowed, or RFC 3339.
func timeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		s, ns := math.Modf(f)
		return time.Unix(int64(s), int64(math.Round(ns*1000))*int64(time.Millisecond)).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, errorf(errBadData, "invalid parameter %q: cannot parse %q to a valid timestamp", name, v)
}

// durationParam reads a duration as Prometheus does: seconds, fractions allowed, or a
// PromQL duration such as 30s or 1h.
func durationParam(r *http.Request, name string) (time.Duration, error) {
	v := r.FormValue(name)
	if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		return time.Duration(f * float64(time.Second)), nil
	}
	if d, err := model.ParseDuration(v); err == nil {
		return time.Duration(d), nil
	}
	return 0, errorf(errBadData, "invalid parameter %q: cannot parse %q to a valid duration", name, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"status":"error","errorType":"internal","error":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
