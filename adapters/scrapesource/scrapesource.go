// Package scrapesource scrapes dcgm-exporter endpoints (any Prometheus exposition, text or
// OpenMetrics, parsed by prometheus/common/expfmt) as a live source. Targets come from a
// static list, a Prometheus file_sd file (JSON or YAML, re-read when it changes) and DNS
// names (the A/AAAA records of a headless Kubernetes Service, re-resolved every interval),
// and are split among streamers by a Keep function, so that each is scraped by one. Every
// target is scraped on its own goroutine, at its own offset within the interval: a slow or
// dead target delays no other. Series get the target's labels (instance, job and file_sd's)
// as a Prometheus would add them, a clashing label of the exposition being renamed
// exported_NAME. A line of an exposition that does not parse costs that line only (parse.go);
// each scrape also records the target's up, scrape_duration_seconds and
// scrape_samples_scraped, as Prometheus does.
package scrapesource

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

var _ ports.LiveSource = (*Scraper)(nil)

// Options configure a Scraper. Zero fields take the defaults given.
type Options struct {
	Static []string // host:port or http(s)://host:port/path
	File   string   // a Prometheus file_sd file
	DNS    []string // name:port, each A/AAAA record a target

	Interval time.Duration // 0 means 15s
	Timeout  time.Duration // per scrape; 0 means 10s, at most Interval
	Job      string        // the job label; "" means dcgm-exporter
	// MaxBody bounds one scrape's body, as Prometheus' body_size_limit: a larger one fails
	// the scrape. 0 means 16 MiB (dcgm-exporter serves some 100 kB for 8 GPUs).
	MaxBody int

	// Keep selects this streamer's targets by URL; nil keeps all.
	Keep func(url string) bool

	Client   *http.Client  // nil: one with no overall timeout (each scrape has its own)
	Resolver *net.Resolver // nil: net.DefaultResolver
	Logger   *slog.Logger  // nil discards
}

// defaultMaxBody is Options.MaxBody's default.
const defaultMaxBody = 16 << 20

// Scraper scrapes its targets until its Run ends.
type Scraper struct {
	opts Options

	mu      sync.Mutex
	targets map[string]*target // by URL
	file    fileState
}

// target is one endpoint and its state.
type target struct {
	url    string
	labels map[string]string
	cancel context.CancelFunc
	status telemetry.Target // guarded by Scraper.mu
}

type fileState struct {
	mod     time.Time
	size    int64
	targets map[string]map[string]string
}

// New returns a Scraper.
func New(opts Options) *Scraper {
	if opts.Interval <= 0 {
		opts.Interval = 15 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	opts.Timeout = min(opts.Timeout, opts.Interval)
	if opts.Job == "" {
		opts.Job = "dcgm-exporter"
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = defaultMaxBody
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scraper{opts: opts, targets: map[string]*target{}}
}

// Check reads the targets file, so that a missing or malformed one is reported at start.
func (s *Scraper) Check() error {
	if s.opts.File == "" {
		return nil
	}
	_, err := s.readFile()
	return err
}

// Run implements ports.LiveSource: it discovers targets every interval and scrapes each on
// its own goroutine until ctx ends.
func (s *Scraper) Run(ctx context.Context, deliver func(context.Context, []telemetry.Reading) error) error {
	if err := s.Check(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(s.opts.Interval)
	defer tick.Stop()
	for {
		found := s.discover(ctx)
		s.reconcile(ctx, &wg, found, deliver)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Targets returns every target of this streamer with its health, by URL.
func (s *Scraper) Targets() []telemetry.Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]telemetry.Target, 0, len(s.targets))
	for _, t := range s.targets {
		st := t.status
		st.DroppedTotal = maps.Clone(st.DroppedTotal) // the loop adds to it; the rest is replaced, not changed
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out
}

// discover returns the targets of every configured kind, by URL, with their labels.
func (s *Scraper) discover(ctx context.Context) map[string]map[string]string {
	found := map[string]map[string]string{}
	add := func(addr string, labels map[string]string) {
		u, lbls, err := s.targetOf(addr, labels)
		if err != nil {
			s.opts.Logger.WarnContext(ctx, "scrape target ignored", "target", addr, "err", err)
			return
		}
		if s.opts.Keep == nil || s.opts.Keep(u) {
			found[u] = lbls
		}
	}
	for _, addr := range s.opts.Static {
		add(addr, nil)
	}
	if s.opts.File != "" {
		fromFile, err := s.readFile()
		if err != nil {
			s.opts.Logger.WarnContext(ctx, "scrape targets file unreadable: keeping its previous targets", "file", s.opts.File, "err", err)
		}
		for addr, labels := range fromFile {
			add(addr, labels)
		}
	}
	for _, name := range s.opts.DNS {
		host, port, err := net.SplitHostPort(name)
		if err != nil {
			s.opts.Logger.WarnContext(ctx, "scrape DNS name ignored: want name:port", "name", name)
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		addrs, err := s.opts.Resolver.LookupHost(lctx, host)
		cancel()
		if err != nil {
			s.opts.Logger.WarnContext(ctx, "scrape DNS lookup failed: retried next interval", "name", host, "err", err)
			s.keepKnown(found, "dns:"+name)
			continue
		}
		for _, a := range addrs {
			add(net.JoinHostPort(a, port), map[string]string{"__dns": name})
		}
	}
	return found
}

// keepKnown keeps the targets an earlier lookup of source found, when this one failed: a DNS
// hiccup must not stop every scrape.
func (s *Scraper) keepKnown(found map[string]map[string]string, source string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for u, t := range s.targets {
		if t.labels["__dns"] == strings.TrimPrefix(source, "dns:") {
			found[u] = t.labels
		}
	}
}

// readFile returns the targets of the file_sd file, re-reading it only when it changed.
func (s *Scraper) readFile() (map[string]map[string]string, error) {
	st, err := os.Stat(s.opts.File)
	s.mu.Lock()
	known := s.file
	s.mu.Unlock()
	if err != nil {
		return known.targets, fmt.Errorf("scrape targets file %s: %w", s.opts.File, err)
	}
	if known.targets != nil && st.ModTime().Equal(known.mod) && st.Size() == known.size {
		return known.targets, nil
	}
	data, err := os.ReadFile(s.opts.File)
	if err != nil {
		return known.targets, fmt.Errorf("scrape targets file %s: %w", s.opts.File, err)
	}
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	if err := yaml.UnmarshalStrict(data, &groups); err != nil {
		return known.targets, fmt.Errorf("scrape targets file %s: not Prometheus file_sd (a list of {targets, labels}): %w", s.opts.File, err)
	}
	targets := map[string]map[string]string{}
	for _, g := range groups {
		for _, t := range g.Targets {
			targets[t] = g.Labels
		}
	}
	s.mu.Lock()
	s.file = fileState{mod: st.ModTime(), size: st.Size(), targets: targets}
	s.mu.Unlock()
	return targets, nil
}

// targetOf makes a target's URL and labels from its address (host:port or a URL) and its
// discovered labels, as Prometheus does: __scheme__ and __metrics_path__ shape the URL,
// other labels starting with __ are dropped.
func (s *Scraper) targetOf(addr string, labels map[string]string) (string, map[string]string, error) {
	scheme, path := "http", "/metrics"
	if v := labels["__scheme__"]; v != "" {
		scheme = v
	}
	if v := labels["__metrics_path__"]; v != "" {
		path = v
	}
	if !strings.Contains(addr, "://") {
		addr = scheme + "://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", nil, errors.New("not host:port or an http(s) URL")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = path
	}
	out := map[string]string{"instance": u.Host, "job": s.opts.Job}
	for k, v := range labels {
		if !strings.HasPrefix(k, "__") && v != "" {
			out[k] = v
		}
	}
	if dns := labels["__dns"]; dns != "" {
		out["__dns"] = dns // kept to find the target again when a lookup fails
	}
	return u.String(), out, nil
}

// reconcile starts the targets found that are not running and stops those gone.
func (s *Scraper) reconcile(ctx context.Context, wg *sync.WaitGroup, found map[string]map[string]string,
	deliver func(context.Context, []telemetry.Reading) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	added, removed := 0, 0
	defer func() {
		if added+removed > 0 {
			s.opts.Logger.InfoContext(ctx, "scrape targets changed", "added", added, "removed", removed, "targets", len(s.targets))
		}
	}()
	for u, t := range s.targets {
		if _, ok := found[u]; !ok {
			t.cancel()
			delete(s.targets, u)
			removed++
			s.opts.Logger.DebugContext(ctx, "scrape target gone", "target", u)
		}
	}
	for _, u := range slices.Sorted(maps.Keys(found)) {
		if _, ok := s.targets[u]; ok {
			continue
		}
		tctx, cancel := context.WithCancel(ctx)
		t := &target{url: u, labels: found[u], cancel: cancel}
		t.status = telemetry.Target{URL: u, Labels: publicLabels(t.labels), Health: "unknown", ScrapeInterval: s.opts.Interval}
		s.targets[u] = t
		added++
		s.opts.Logger.DebugContext(ctx, "scrape target added", "target", u)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(tctx, t, deliver)
		}()
	}
}

func publicLabels(labels map[string]string) map[string]string {
	out := maps.Clone(labels)
	delete(out, "__dns")
	return out
}

// loop scrapes t every interval, starting at an offset of its own so that targets spread
// over the interval.
func (s *Scraper) loop(ctx context.Context, t *target, deliver func(context.Context, []telemetry.Reading) error) {
	h := fnv.New64a()
	h.Write([]byte(t.url))
	offset := time.Duration(h.Sum64() % uint64(s.opts.Interval))
	next := time.Now().Truncate(s.opts.Interval).Add(offset)
	if next.Before(time.Now()) {
		next = next.Add(s.opts.Interval)
	}
	for {
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		start := time.Now()
		readings, scraped, err := s.scrape(ctx, t, start)
		took := time.Since(start)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		wasDown := t.status.Health == "down"
		t.status.LastScrape, t.status.LastDuration, t.status.LastSamples = start.UTC(), took, len(readings)
		t.status.Scrapes++
		t.status.Health, t.status.LastError = "up", ""
		if err != nil {
			t.status.Health, t.status.LastError = "down", err.Error()
		}
		s.mu.Unlock()
		switch {
		case err != nil && !wasDown:
			s.opts.Logger.WarnContext(ctx, "scrape failed: retried every interval", "target", t.url, "err", err)
		case err == nil && wasDown:
			s.opts.Logger.InfoContext(ctx, "scrape target back up", "target", t.url)
		}
		// The target's own series go with its samples, and alone when the scrape failed.
		readings = append(readings, targetReadings(t.labels, start, took, err == nil, scraped)...)
		if err := deliver(ctx, readings); err != nil && ctx.Err() == nil {
			s.opts.Logger.WarnContext(ctx, "scrape not delivered to the queue", "target", t.url, "samples", len(readings), "err", err)
		}
		// A scrape or a delivery longer than the interval skips the intervals it overlapped.
		missed := int64(0)
		for next = next.Add(s.opts.Interval); !next.After(time.Now()); next = next.Add(s.opts.Interval) {
			missed++
		}
		if missed > 0 {
			s.mu.Lock()
			t.status.Missed += missed
			s.mu.Unlock()
			s.opts.Logger.WarnContext(ctx, "scrape overran its interval: intervals skipped", "target", t.url, "skipped", missed, "took", time.Since(start))
		}
	}
}

// targetReadings are the target's own series of a scrape, as Prometheus records them: up,
// scrape_duration_seconds and scrape_samples_scraped, stamped with the scrape's start.
func targetReadings(labels map[string]string, start time.Time, took time.Duration, up bool, scraped int) []telemetry.Reading {
	g := telemetry.TargetDevice(publicLabels(labels))
	at := start.UTC().Truncate(time.Millisecond) // as the scrape's samples are stamped
	reading := func(metric string, v float64) telemetry.Reading {
		return telemetry.Reading{GPU: g, Sample: telemetry.Sample{GPU: g.Key(), Metric: metric, Time: at, Value: v}}
	}
	upValue := 0.0
	if up {
		upValue = 1
	}
	return []telemetry.Reading{reading(telemetry.MetricUp, upValue), reading(telemetry.MetricScrapeDuration, took.Seconds()),
		reading(telemetry.MetricScrapeSamples, float64(scraped))}
}

// scrape reads one exposition of t into readings stamped with the scrape's start (or the
// exposition's own timestamps), and says how many samples the exposition held.
func (s *Scraper) scrape(ctx context.Context, t *target, start time.Time) ([]telemetry.Reading, int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1")
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", fmt.Sprintf("%g", s.opts.Timeout.Seconds()))
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("server returned HTTP status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(s.opts.MaxBody)+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read the body: %w", err)
	}
	if len(body) > s.opts.MaxBody {
		return nil, 0, fmt.Errorf("body exceeds %d bytes: not stored, rather than stored in part", s.opts.MaxBody)
	}
	format := expfmt.ResponseFormat(resp.Header)
	if format == expfmt.FmtUnknown {
		format = expfmt.NewFormat(expfmt.TypeTextPlain)
	}
	vec, bad, err := decode(body, format, model.TimeFromUnixNano(start.UnixNano()))
	if err != nil {
		return nil, 0, err
	}
	out, counts := readings(vec, t.labels)
	for range bad {
		counts.Reject("line")
	}
	s.report(ctx, t, len(out), counts, bad)
	return out, len(vec), nil
}

// report records what a successful scrape dropped in t's status, and logs a change: a WARN
// when its samples start being dropped (all of them, bad lines, values that cannot be
// kept), an INFO when series without a GPU are dropped, which are usually other exporters'.
func (s *Scraper) report(ctx context.Context, t *target, kept int, counts telemetry.ScanStats, bad []badLine) {
	dropped := int(counts.NoDevice + counts.Rejected)
	by := make(map[string]int, len(counts.RejectedBy)+1)
	for reason, n := range counts.RejectedBy {
		by[reason] = int(n)
	}
	if counts.NoDevice > 0 {
		by["no_device"] = int(counts.NoDevice)
	}
	warning := ""
	if kept == 0 && dropped > 0 {
		warning = fmt.Sprintf("every sample of the last scrape dropped (%d): %s", dropped, dropReasons(by))
	}
	s.mu.Lock()
	before := t.status
	t.status.LastDropped, t.status.LastRejected, t.status.LastDroppedBy = dropped, int(counts.Rejected), by
	t.status.Warning = warning
	t.status.FirstBadLine = nil
	if len(bad) > 0 {
		t.status.FirstBadLine = &telemetry.BadLine{Number: bad[0].Number, Text: bad[0].Text, Reason: bad[0].Reason}
	}
	if t.status.DroppedTotal == nil && dropped > 0 {
		t.status.DroppedTotal = map[string]int64{}
	}
	for reason, n := range by {
		t.status.DroppedTotal[reason] += int64(n)
	}
	s.mu.Unlock()
	switch {
	case warning != "" && before.Warning == "":
		s.opts.Logger.WarnContext(ctx, "scrape: the target answers but every sample is dropped", "target", t.url, "dropped", dropped, "by", dropReasons(by))
	case len(bad) > 0 && before.FirstBadLine == nil:
		s.opts.Logger.WarnContext(ctx, "scrape: lines that do not parse skipped, the rest of the scrape kept", "target", t.url, "per_scrape", len(bad),
			"first_line", bad[0].Number, "text", bad[0].Text, "err", bad[0].Reason)
	case counts.Rejected > int64(len(bad)) && before.LastRejected == 0:
		s.opts.Logger.WarnContext(ctx, "scrape: samples that cannot be stored dropped", "target", t.url, "per_scrape", counts.Rejected, "rejected_by", counts.Reasons())
	case counts.NoDevice > 0 && before.LastDropped-before.LastRejected == 0:
		s.opts.Logger.InfoContext(ctx, "scrape: samples of series without a GPU dropped", "target", t.url, "per_scrape", counts.NoDevice)
	}
}

// dropReasons is a drop count by reason as text, the most frequent first.
func dropReasons(by map[string]int) string {
	st := telemetry.ScanStats{RejectedBy: make(map[string]int64, len(by))}
	for reason, n := range by {
		st.RejectedBy[reason] = int64(n)
	}
	return st.Reasons()
}

// readings converts every sample of an exposition, dropping and counting those of series
// without a GPU (NoDevice) and those with a value or text the store cannot keep (Rejected,
// by the field at fault).
func readings(vec model.Vector, target map[string]string) (out []telemetry.Reading, counts telemetry.ScanStats) {
	var labels []telemetry.Label
	for _, smp := range vec {
		counts.Rows++
		labels = seriesLabels(labels[:0], smp.Metric, target)
		r, err := telemetry.SeriesReading(labels)
		if errors.Is(err, telemetry.ErrNoDevice) {
			counts.NoDevice++
			continue
		}
		if err == nil {
			r.Sample.Value = float64(smp.Value)
			r.Sample.Time = smp.Timestamp.Time().UTC()
			err = cmp.Or(r.Sample.Validate(), r.GPU.Validate())
		}
		if err != nil {
			var v *telemetry.ValidationError
			reason := "other"
			if errors.As(err, &v) {
				reason = v.Field
			}
			counts.Reject(reason)
			continue
		}
		out = append(out, r)
	}
	return out, counts
}

// seriesLabels appends a sample's labels and the target's, renaming an exposition label
// that clashes with a target label exported_NAME, as Prometheus does without honor_labels.
func seriesLabels(out []telemetry.Label, m model.Metric, target map[string]string) []telemetry.Label {
	for name, value := range m {
		n := string(name)
		if _, clash := target[n]; clash {
			n = "exported_" + n
		}
		out = append(out, telemetry.Label{Name: n, Value: string(value)})
	}
	for name, value := range target {
		if !strings.HasPrefix(name, "__") {
			out = append(out, telemetry.Label{Name: name, Value: value})
		}
	}
	return out
}
