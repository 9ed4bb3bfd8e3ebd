package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue/asynqtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/webconfig/webconfigtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/access"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports/portstest"
)

// secured writes a web config serving TLS with four principals: alice (admin), grafana
// (read), prometheus (write) and the token of vmagent (write). It returns the file, the CA
// file of its certificate and a client trusting it.
func secured(t *testing.T) (webConfig, caFile string, client *http.Client) {
	dir := t.TempDir()
	certPEM, keyPEM := webconfigtest.SelfSigned(t)
	caFile = filepath.Join(dir, "server.crt")
	require.NoError(t, os.WriteFile(caFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "server.key"), keyPEM, 0o600))
	yaml := "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n" + webconfigtest.Principals(t, portstest.Principals{
		Passwords: map[string]string{"alice": "a-pass", "grafana": "g-pass", "prometheus": "p-pass"},
		Tokens:    map[string]string{"vmagent": "v-token"},
		Roles:     map[string]access.Role{"alice": access.Admin, "prometheus": access.Write, "vmagent": access.Write},
	})
	webConfig = filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(webConfig, []byte(yaml), 0o600))
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(certPEM))
	client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return webConfig, caFile, client
}

// call sends one request as who ("" anonymous, "token:T" a bearer token, else user:pass)
// and returns the status and the error code of the answer, if any.
func call(t *testing.T, client *http.Client, method, url, who string, body []byte, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if tok, ok := strings.CutPrefix(who, "token:"); ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if user, pass, ok := strings.Cut(who, ":"); ok {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct{ Error struct{ Code string } }
	_ = json.Unmarshal(raw, &e)
	if resp.StatusCode == http.StatusUnauthorized {
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic", "a 401 says how to authenticate")
	}
	return resp.StatusCode, e.Error.Code
}

// remoteWriteBody is a remote_write request of one sample of one GPU.
func remoteWriteBody(t *testing.T, uuid string, at time.Time) []byte {
	wr := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: []prompb.Label{{Name: "__name__", Value: "DCGM_FI_DEV_GPU_TEMP"}, {Name: "Hostname", Value: "web-test"},
			{Name: "UUID", Value: uuid}, {Name: "gpu", Value: "0"}},
		Samples: []prompb.Sample{{Value: 41, Timestamp: at.UnixMilli()}},
	}}}
	return apptest.RemoteWriteBodyOf(t, &wr)
}

var remoteWriteHeader = http.Header{"Content-Type": {"application/x-protobuf"}, "Content-Encoding": {"snappy"},
	"X-Prometheus-Remote-Write-Version": {"0.1.0"}}

// With a web config, the process serves HTTPS only; the probes stay open, the API takes a
// reader, remote_write a writer (basic auth or bearer token), and the queue UI's actions an
// admin on this site.
func TestWebConfigTLSAuthAndRoles(t *testing.T) {
	webConfig, _, client := secured(t)
	redisURL := asynqtest.RedisURL(t)
	p := startOver(t, "https", client, "--web-config-file="+webConfig, "--remote-write",
		"--database-url="+sqlstoretest.SQLiteURL(t), "--redis-url="+redisURL, "--queue-ui")
	u := p.base

	status, _ := call(t, client, "GET", u+"/health", "", nil, nil)
	assert.Equal(t, 200, status, "probes need no credentials")
	status, _ = call(t, client, "GET", u+"/ready", "", nil, nil)
	assert.Equal(t, 200, status)
	status, _ = call(t, http.DefaultClient, "GET", strings.Replace(u, "https:", "http:", 1)+"/api/v1/gpus", "grafana:g-pass", nil, nil)
	assert.Equal(t, 400, status, "no plain HTTP beside TLS")

	for who, want := range map[string]int{"": 401, "grafana:wrong": 401, "nobody:g-pass": 401, "token:nope": 401,
		"grafana:g-pass": 200, "prometheus:p-pass": 200, "alice:a-pass": 200, "token:v-token": 200} {
		status, code := call(t, client, "GET", u+"/api/v1/gpus", who, nil, nil)
		assert.Equal(t, want, status, "GET /api/v1/gpus as %q", who)
		if want == 401 {
			assert.Equal(t, "unauthenticated", code)
		}
		status, _ = call(t, client, "HEAD", u+"/api/v1/stats", who, nil, nil)
		assert.Equal(t, want, status, "HEAD /api/v1/stats as %q", who)
		for _, path := range []string{"/", "/ui/app.js"} { // the console: the browser asks for a user
			status, _ = call(t, client, "GET", u+path, who, nil, nil)
			assert.Equal(t, want, status, "GET %s as %q", path, who)
		}
	}

	at := time.Now().Add(-time.Minute)
	for who, want := range map[string]int{"": 401, "grafana:g-pass": 403, "prometheus:p-pass": 204, "token:v-token": 204, "alice:a-pass": 204} {
		status, _ := call(t, client, "POST", u+"/api/v1/write", who, remoteWriteBody(t, "GPU-web-"+who, at), remoteWriteHeader)
		assert.Equal(t, want, status, "remote_write as %q", who)
	}
	require.Eventually(t, func() bool {
		status, _ := call(t, client, "GET", u+"/api/v1/gpus/GPU-web-prometheus:p-pass", "grafana:g-pass", nil, nil)
		status2, _ := call(t, client, "GET", u+"/api/v1/gpus/GPU-web-token:v-token", "grafana:g-pass", nil, nil)
		return status == 200 && status2 == 200
	}, 20*time.Second, 50*time.Millisecond, "what the writers sent is stored")
	status, _ = call(t, client, "GET", u+"/api/v1/gpus/GPU-web-grafana:g-pass", "grafana:g-pass", nil, nil)
	assert.Equal(t, 404, status, "what the reader sent is not")

	status, _ = call(t, client, "GET", u+"/queues/api/queues", "grafana:g-pass", nil, nil)
	assert.Equal(t, 200, status, "a reader sees the queue UI")
	status, _ = call(t, client, "GET", u+"/queues", "", nil, nil)
	assert.Equal(t, 401, status)

	opt, err := asynq.ParseRedisURI(redisURL)
	require.NoError(t, err)
	ins := asynq.NewInspector(opt)
	defer ins.Close()
	paused := func() bool {
		info, err := ins.GetQueueInfo("telemetry")
		require.NoError(t, err)
		return info.Paused
	}
	pause := u + "/queues/api/queues/telemetry:pause"
	crossSite := http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}
	for _, tc := range []struct {
		who    string
		header http.Header
		want   int
	}{{"", nil, 401}, {"grafana:g-pass", nil, 403}, {"prometheus:p-pass", nil, 403}, {"alice:a-pass", crossSite, 403}} {
		status, _ := call(t, client, "POST", pause, tc.who, nil, tc.header)
		assert.Equal(t, tc.want, status, "pause as %q, %v", tc.who, tc.header)
		assert.False(t, paused(), "pause as %q changed nothing", tc.who)
	}
	status, _ = call(t, client, "POST", pause, "alice:a-pass", nil, nil)
	assert.Equal(t, 204, status, "the admin pauses the queue")
	assert.True(t, paused())
	status, _ = call(t, client, "POST", u+"/queues/api/queues/telemetry:resume", "alice:a-pass", nil, nil)
	assert.Equal(t, 204, status)
	assert.False(t, paused())

	_, port, _ := strings.Cut(strings.TrimPrefix(u, "https://"), ":")
	_, err = runOnce(t, "--health-check", "--http-addr=:"+port, "--web-config-file="+webConfig)
	assert.NoError(t, err, "the container health check speaks HTTPS")
}

// A real Prometheus remote-writes over TLS with basic auth, as its remote_write config
// allows.
func TestPrometheusRemoteWritesOverTLSWithBasicAuth(t *testing.T) {
	prometheusBinary(t)
	webConfig, caFile, client := secured(t)
	dbURL := sqlstoretest.SQLiteURL(t)
	p := startOver(t, "https", client, "--web-config-file="+webConfig, "--remote-write", "--database-url="+dbURL)
	targets, _ := simulator(t)
	startPrometheus(t, targets, p.base+"/api/v1/write",
		"basic_auth: {username: prometheus, password: p-pass}", "tls_config: {ca_file: "+caFile+"}")
	p.client = &http.Client{Transport: authed{client.Transport, "grafana", "g-pass"}}
	p.waitForSamples(t, 1000)
	assert.Equal(t, 0, strings.Count(p.logs.String(), `"status":401`), "Prometheus authenticated every request")
}

// authed adds basic auth to every request.
type authed struct {
	next       http.RoundTripper
	user, pass string
}

func (a authed) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(a.user, a.pass)
	return a.next.RoundTrip(r)
}

// http_server_config.http2: false serves HTTP/1.1 only, as in exporter-toolkit.
func TestWebConfigTurnsHTTP2Off(t *testing.T) {
	webConfig, _, client := secured(t)
	client.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	for _, tc := range []struct{ extra, proto string }{{"", "HTTP/2.0"}, {"http_server_config:\n  http2: false\n", "HTTP/1.1"}} {
		raw, err := os.ReadFile(webConfig)
		require.NoError(t, err)
		file := filepath.Join(filepath.Dir(webConfig), "web-"+strings.ReplaceAll(tc.proto, "/", "")+".yml")
		require.NoError(t, os.WriteFile(file, append(raw, tc.extra...), 0o600))
		p := startOver(t, "https", client, "--web-config-file="+file, "--database-url="+sqlstoretest.SQLiteURL(t), "--loop=false")
		resp, err := client.Get(p.base + "/health")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tc.proto, resp.Proto, tc.extra)
	}
}

// rate_limit is applied after authentication, a bucket for each client and for its
// remote_write: an anonymous flood from the same address spends its own bucket and no
// authenticated user's, and a writer that spent its API budget still writes.
func TestRateLimitIsPerClientAfterAuthentication(t *testing.T) {
	webConfig, _, client := secured(t)
	raw, err := os.ReadFile(webConfig)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(webConfig, append(raw, "rate_limit:\n  interval: 1h\n  burst: 20\n"...), 0o600))
	p := startOver(t, "https", client, "--web-config-file="+webConfig, "--remote-write",
		"--database-url="+sqlstoretest.SQLiteURL(t), "--loop=false")
	u := p.base

	statuses := func(n int, method, path, who string, body func() []byte, header http.Header) map[int]int {
		out := map[int]int{}
		for range n {
			var b []byte
			if body != nil {
				b = body()
			}
			status, _ := call(t, client, method, u+path, who, b, header)
			out[status]++
		}
		return out
	}
	assert.Equal(t, map[int]int{401: 20, 429: 180}, statuses(200, "GET", "/api/v1/gpus", "", nil, nil),
		"an anonymous flood: the first 20 told to authenticate, then held back")
	assert.Equal(t, map[int]int{429: 10}, statuses(10, "GET", "/api/v1/gpus", "grafana:wrong", nil, nil),
		"a failed authentication is charged to the address")
	assert.Equal(t, map[int]int{200: 20}, statuses(20, "GET", "/api/v1/gpus", "grafana:g-pass", nil, nil),
		"every request of an authenticated user from the same address is served")
	assert.Equal(t, map[int]int{200: 20}, statuses(20, "GET", "/api/v1/stats", "prometheus:p-pass", nil, nil))
	write := func() []byte { return remoteWriteBody(t, "GPU-rate", time.Now().Add(-time.Minute)) }
	assert.Equal(t, map[int]int{204: 20, 503: 1}, statuses(21, "POST", "/api/v1/write", "prometheus:p-pass", write, remoteWriteHeader),
		"remote_write has its own budget; past it, 503, which Prometheus retries")
	status, code := call(t, client, "GET", u+"/api/v1/gpus", "grafana:g-pass", nil, nil)
	assert.Equal(t, 429, status)
	assert.Equal(t, "rate_limited", code)
}
