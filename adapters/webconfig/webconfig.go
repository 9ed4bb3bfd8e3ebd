// Package webconfig reads the web configuration file of the HTTP server: the format of the
// Prometheus exporter-toolkit (tls_server_config, basic_auth_users with bcrypt hashes,
// http_server_config, rate_limit), so that a file written for Prometheus or an exporter
// works as it is, plus two keys of its own:
//
//	roles:          # user or token name: read | write | admin (a user without one reads)
//	  alice: admin
//	  prometheus: write
//	bearer_tokens:  # name: SHA-256 of the token, in hex (echo -n TOKEN | sha256sum)
//	  vmagent: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//
// The file is read again when it changes (certificates on every TLS handshake, as
// exporter-toolkit does); a change that cannot be read is logged and the last good
// configuration kept.
package webconfig

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/access"
)

// file is the YAML of the web configuration file.
type file struct {
	web.Config   `yaml:",inline"`
	Roles        map[string]string `yaml:"roles"`
	BearerTokens map[string]string `yaml:"bearer_tokens"`
}

// settings is one reading of the file.
type settings struct {
	tls     *tls.Config // nil: plain HTTP
	http2   bool
	headers map[string]string
	rate    rate.Limit // of each client's bucket (Allow); 0: no limit
	burst   int
	users   map[string][]byte
	fake    []byte                       // compared against for unknown users: a hash at the users' highest cost
	slowest time.Duration                // a comparison at that cost: every uncached check takes as long
	tokens  map[[sha256.Size]byte]string // SHA-256 of the token → its name
	roles   map[string]access.Role
}

// open reports whether the file names nobody, so that every request is anonymous.
func (s *settings) open() bool { return len(s.users) == 0 && len(s.tokens) == 0 }

// Config is a web configuration file, followed as it changes.
type Config struct {
	path string
	log  *slog.Logger

	cur     atomic.Pointer[settings]
	checked atomic.Int64 // when the file was last looked at, in Unix nanoseconds
	mu      sync.Mutex   // held while the file is read again
	stamp   string       // size and time of the file last read

	bcryptMu sync.Mutex // one bcrypt comparison at a time: each takes a core for ~50 ms
	cacheMu  sync.Mutex
	cache    map[[sha256.Size]byte]bool

	bucketsMu sync.Mutex
	buckets   map[string]*rate.Limiter // by budget and client
	bucketsOf *settings                // the settings the buckets were made with
}

// How often the file is looked at for changes, how many successful password checks are
// remembered, and how many clients' rate-limit buckets are kept.
const (
	recheckEvery = time.Second
	cacheSize    = 1024
	maxBuckets   = 10_000
)

// Load reads the file at path; every problem in it is an error naming the file.
func Load(path string, log *slog.Logger) (*Config, error) {
	c := &Config{path: path, log: log, cache: map[[sha256.Size]byte]bool{}}
	s, stamp, err := read(path)
	if err != nil {
		return nil, err
	}
	c.cur.Store(s)
	c.stamp = stamp
	c.checked.Store(time.Now().UnixNano())
	return c, nil
}

func read(path string) (*settings, string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, "", fmt.Errorf("web config: %w", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("web config: %w", err)
	}
	s, err := parse(raw, filepath.Dir(path))
	if err != nil {
		return nil, "", fmt.Errorf("web config %s: %w", path, err)
	}
	return s, fmt.Sprint(info.Size(), info.ModTime().UnixNano()), nil
}

// parse reads a file's contents; relative paths in it are relative to dir.
func parse(raw []byte, dir string) (*settings, error) {
	f := file{Config: web.Config{
		TLSConfig:  web.TLSConfig{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13},
		HTTPConfig: web.HTTPConfig{HTTP2: true},
	}}
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return nil, err
	}
	f.TLSConfig.SetDirectory(dir)
	s := &settings{
		http2:   f.HTTPConfig.HTTP2,
		headers: f.HTTPConfig.Header,
		users:   make(map[string][]byte, len(f.Users)),
		tokens:  make(map[[sha256.Size]byte]string, len(f.BearerTokens)),
		roles:   make(map[string]access.Role, len(f.Roles)),
	}
	if f.TLSConfig.IsEnabled() {
		cfg, err := web.ConfigToTLSConfig(&f.TLSConfig)
		if err != nil {
			return nil, fmt.Errorf("tls_server_config: %w", err)
		}
		s.tls = cfg
	}
	cost := bcrypt.MinCost
	for name, hash := range f.Users {
		c, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return nil, fmt.Errorf("basic_auth_users: %s: not a bcrypt hash (make one with: telemetry hash-password)", name)
		}
		cost = max(cost, c)
		s.users[name] = []byte(hash)
	}
	if len(s.users) > 0 {
		began := time.Now()
		fake, err := bcrypt.GenerateFromPassword([]byte("not anybody's password"), cost)
		if err != nil {
			return nil, fmt.Errorf("basic_auth_users: %w", err)
		}
		s.fake, s.slowest = fake, time.Since(began)
	}
	for name, sum := range f.BearerTokens {
		b, err := hex.DecodeString(strings.TrimSpace(sum))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("bearer_tokens: %s: not the SHA-256 of a token in hex (make one with: echo -n TOKEN | sha256sum)", name)
		}
		if _, dup := s.users[name]; dup {
			return nil, fmt.Errorf("bearer_tokens: %s is a user's name too: roles could not tell them apart", name)
		}
		s.tokens[[sha256.Size]byte(b)] = name
	}
	for name, r := range f.Roles {
		role, err := access.ParseRole(r)
		if err != nil {
			return nil, fmt.Errorf("roles: %s: %w", name, err)
		}
		if _, ok := s.users[name]; !ok && !s.hasToken(name) {
			return nil, fmt.Errorf("roles: %s is neither a user of basic_auth_users nor a token of bearer_tokens", name)
		}
		s.roles[name] = role
	}
	if rl := f.RateLimiterConfig; rl.Interval > 0 {
		s.rate, s.burst = rate.Every(rl.Interval), max(rl.Burst, 1)
	}
	return s, nil
}

func (s *settings) hasToken(name string) bool {
	for _, n := range s.tokens {
		if n == name {
			return true
		}
	}
	return false
}

// current is the configuration in force, read again first when the file changed.
func (c *Config) current() *settings {
	now := time.Now().UnixNano()
	last := c.checked.Load()
	if now-last < int64(recheckEvery) || !c.checked.CompareAndSwap(last, now) {
		return c.cur.Load()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	info, err := os.Stat(c.path)
	if err != nil || fmt.Sprint(info.Size(), info.ModTime().UnixNano()) == c.stamp {
		return c.cur.Load()
	}
	s, stamp, err := read(c.path)
	if err != nil {
		c.log.Error("web config changed but cannot be read: keeping the last good one", "err", err)
		c.stamp = fmt.Sprint(info.Size(), info.ModTime().UnixNano()) // said once per change
		return c.cur.Load()
	}
	if (s.tls == nil) != (c.cur.Load().tls == nil) {
		c.log.Warn("web config: turning TLS on or off takes a restart; the rest of the change is in force")
	}
	c.log.Info("web config read again", "path", c.path, "users", len(s.users), "tokens", len(s.tokens))
	c.stamp = stamp
	c.cur.Store(s)
	return s
}

// Describe sums the configuration up for the start-up log.
func (c *Config) Describe() []any {
	s := c.cur.Load()
	users := make([]string, 0, len(s.users))
	for u := range s.users {
		users = append(users, u)
	}
	sort.Strings(users)
	return []any{"tls", s.tls != nil, "users", users, "tokens", len(s.tokens)}
}

// Authenticate implements ports.Authenticator. When the file names no user and no token,
// every request is anonymous (access.Anonymous).
func (c *Config) Authenticate(_ context.Context, cred access.Credentials) (access.Identity, error) {
	s := c.current()
	if s.open() {
		return access.Identity{Role: access.Anonymous}, nil
	}
	name, ok := "", false
	switch {
	case cred.Token != "":
		name, ok = s.token(cred.Token)
	case cred.User != "":
		name, ok = cred.User, c.password(s, cred.User, cred.Password)
	}
	if !ok {
		return access.Identity{}, access.ErrUnauthenticated
	}
	if r, set := s.roles[name]; set {
		return access.Identity{Name: name, Role: r}, nil
	}
	return access.Identity{Name: name, Role: access.Read}, nil
}

func (s *settings) token(t string) (string, bool) {
	sum := sha256.Sum256([]byte(t))
	name, ok := s.tokens[sum] // a lookup by hash: the secret never meets a timing comparison
	return name, ok
}

// password checks a user's password against its bcrypt hash, remembering a success so that
// a client sending the same credentials with every request pays for bcrypt once. A check
// not remembered takes as long for an unknown user as for any known one, whatever the cost
// of its hash: timing tells nobody which users exist. Failures are not remembered, so that
// a flood of wrong passwords cannot push the good ones out.
func (c *Config) password(s *settings, user, pass string) bool {
	hash, known := s.users[user]
	if !known {
		hash = s.fake
	}
	h := sha256.New()
	for _, part := range []string{user, string(hash), pass} {
		fmt.Fprintf(h, "%d:%s", len(part), part)
	}
	key := [sha256.Size]byte(h.Sum(nil))
	c.cacheMu.Lock()
	ok := c.cache[key]
	c.cacheMu.Unlock()
	if ok {
		return true
	}
	began := time.Now()
	c.bcryptMu.Lock()
	ok = bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil && known
	c.bcryptMu.Unlock()
	if ok {
		c.cacheMu.Lock()
		if len(c.cache) >= cacheSize {
			clear(c.cache)
		}
		c.cache[key] = true
		c.cacheMu.Unlock()
	}
	time.Sleep(s.slowest - time.Since(began)) // a cheaper hash waits out the difference
	return ok
}

// Allow applies the file's rate_limit to one client and budget: each has its own bucket,
// so that an anonymous flood (counted by address) never throttles an authenticated user,
// and remote_write ("remote_write") never waits behind a reader ("api"). maxBuckets are
// kept at most: past it, those of clients not held back are forgotten.
func (c *Config) Allow(client, budget string) bool {
	s := c.current()
	if s.rate == 0 {
		return true
	}
	key := budget + "\x00" + client
	c.bucketsMu.Lock()
	defer c.bucketsMu.Unlock()
	if c.bucketsOf != s {
		c.buckets, c.bucketsOf = map[string]*rate.Limiter{}, s
	}
	l := c.buckets[key]
	if l == nil {
		if len(c.buckets) >= maxBuckets {
			c.forget()
		}
		l = rate.NewLimiter(s.rate, s.burst)
		c.buckets[key] = l
	}
	return l.Allow()
}

// forget drops the buckets of clients that are not being held back (a token left): a new
// bucket would let them in as well. Those held back are kept, unless they alone fill it.
func (c *Config) forget() {
	now := time.Now()
	for k, l := range c.buckets {
		if l.TokensAt(now) >= 1 {
			delete(c.buckets, k)
		}
	}
	if len(c.buckets) >= maxBuckets {
		clear(c.buckets)
	}
}

// TLS is the server's TLS configuration, nil for plain HTTP. Each handshake takes the
// file's current certificates and settings. With http_server_config.http2 false its
// NextProtos is http/1.1 alone, which the HTTP server takes as HTTP/2 turned off.
func (c *Config) TLS() *tls.Config {
	s := c.cur.Load()
	if s.tls == nil {
		return nil
	}
	cfg := s.tls.Clone()
	if !s.http2 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cur := c.current()
		if cur.tls == nil {
			return nil, errors.New("web config: TLS was turned off; restart to serve plain HTTP")
		}
		next := cur.tls.Clone()
		next.NextProtos = cfg.NextProtos
		return next, nil
	}
	return cfg
}

// Wrap adds the configured response headers to h. The rate limit is applied after
// authentication, by Allow.
func (c *Config) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range c.current().headers {
			w.Header().Set(k, v)
		}
		h.ServeHTTP(w, r)
	})
}
