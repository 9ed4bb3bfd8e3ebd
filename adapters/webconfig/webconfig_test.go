package webconfig_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/webconfig"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/webconfig/webconfigtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/access"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports/portstest"
)

var quiet = slog.New(slog.DiscardHandler)

func TestAuthenticatorContract(t *testing.T) {
	portstest.TestAuthenticator(t, func(t *testing.T, p portstest.Principals) ports.Authenticator {
		c, err := webconfig.Load(write(t, t.TempDir(), webconfigtest.Principals(t, p)), quiet)
		require.NoError(t, err)
		return c
	})
}

func write(t testing.TB, dir, yaml string) string {
	path := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	return path
}

func TestNobodyNamedMeansAnonymous(t *testing.T) {
	c, err := webconfig.Load(write(t, t.TempDir(), "http_server_config:\n  http2: false\n"), quiet)
	require.NoError(t, err)
	for _, cred := range []access.Credentials{{}, {User: "x", Password: "y"}, {Token: "t"}} {
		id, err := c.Authenticate(context.Background(), cred)
		require.NoError(t, err)
		assert.Equal(t, access.Identity{Role: access.Anonymous}, id)
	}
	assert.Nil(t, c.TLS(), "no tls_server_config: plain HTTP")
}

func TestMistakesNameTheirKey(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"basic_auth_users:\n  alice: plain\n", "alice: not a bcrypt hash"},
		{"bearer_tokens:\n  ci: abc\n", "ci: not the SHA-256"},
		{"roles:\n  bob: admin\n", "bob is neither a user"},
		{"basic_auth_users:\n  bob: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\nroles:\n  bob: root\n", `role "root" is not read, write or admin`},
		{"tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n", "tls_server_config: failed to read cert_file"},
		{"basic_auth_user:\n  a: b\n", "field basic_auth_user not found"},
	} {
		path := write(t, t.TempDir(), tc.yaml)
		_, err := webconfig.Load(path, quiet)
		require.Error(t, err, tc.yaml)
		assert.Contains(t, err.Error(), tc.want)
		assert.Contains(t, err.Error(), path)
	}
	_, err := webconfig.Load(filepath.Join(t.TempDir(), "missing.yml"), quiet)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestChangesAreFollowed(t *testing.T) {
	dir := t.TempDir()
	one := portstest.Principals{Passwords: map[string]string{"alice": "one"}}
	path := write(t, dir, webconfigtest.Principals(t, one))
	c, err := webconfig.Load(path, quiet)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.Authenticate(ctx, access.Credentials{User: "alice", Password: "one"})
	require.NoError(t, err)

	two := portstest.Principals{Passwords: map[string]string{"alice": "two"}, Roles: map[string]access.Role{"alice": access.Admin}}
	write(t, dir, webconfigtest.Principals(t, two))
	require.EventuallyWithT(t, func(t *assert.CollectT) {
		id, err := c.Authenticate(ctx, access.Credentials{User: "alice", Password: "two"})
		assert.NoError(t, err)
		assert.Equal(t, access.Admin, id.Role)
	}, 5*time.Second, 100*time.Millisecond)
	_, err = c.Authenticate(ctx, access.Credentials{User: "alice", Password: "one"})
	assert.ErrorIs(t, err, access.ErrUnauthenticated, "the old password is gone")

	write(t, dir, "basic_auth_users: [broken\n")
	time.Sleep(1100 * time.Millisecond)
	id, err := c.Authenticate(ctx, access.Credentials{User: "alice", Password: "two"})
	require.NoError(t, err, "a broken change keeps the last good configuration")
	assert.Equal(t, access.Admin, id.Role)
}

func TestTLSAndHeaders(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := webconfigtest.SelfSigned(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "server.crt"), certPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "server.key"), keyPEM, 0o600))
	c, err := webconfig.Load(write(t, dir, `
tls_server_config:
  cert_file: server.crt   # relative to the file
  key_file: server.key
http_server_config:
  headers:
    X-Frame-Options: deny
`), quiet)
	require.NoError(t, err)
	require.NotNil(t, c.TLS())

	srv := httptest.NewUnstartedServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})))
	srv.TLS = c.TLS()
	srv.StartTLS()
	defer srv.Close()

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(certPEM))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "deny", resp.Header.Get("X-Frame-Options"))
	resp, err = http.Get(strings.Replace(srv.URL, "https:", "http:", 1))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP to the TLS port")
}

// rate_limit is a bucket for each client and budget: a flood spends its own.
func TestRateLimitIsPerClientAndBudget(t *testing.T) {
	c, err := webconfig.Load(write(t, t.TempDir(), "rate_limit:\n  interval: 1h\n  burst: 2\n"), quiet)
	require.NoError(t, err)
	for range 100 {
		c.Allow("anonymous 10.0.0.9", "api")
	}
	assert.False(t, c.Allow("anonymous 10.0.0.9", "api"), "the flood spent its bucket")
	assert.True(t, c.Allow("anonymous 10.0.0.9", "remote_write"), "remote_write has a budget of its own")
	for i, want := range []bool{true, true, false} {
		assert.Equal(t, want, c.Allow("grafana", "api"), "grafana's request %d", i)
	}
	for i := range 20_000 { // more clients than are kept: those not held back are forgotten
		c.Allow(fmt.Sprint("anonymous 10.1.", i/256, ".", i%256), "api")
	}
	assert.False(t, c.Allow("grafana", "api"), "a client held back stays held back")

	open, err := webconfig.Load(write(t, t.TempDir(), "http_server_config:\n  http2: true\n"), quiet)
	require.NoError(t, err)
	for range 100 {
		require.True(t, open.Allow("anonymous 10.0.0.9", "api"), "no rate_limit: no limit")
	}
}

// A password check not remembered takes as long for an unknown user, or one whose hash is
// cheaper, as for the user with the costliest hash. Noise only slows a check down, so the
// fastest of a few of each is compared.
func TestPasswordCheckTimeTellsNoUserApart(t *testing.T) {
	costly, err := bcrypt.GenerateFromPassword([]byte("a"), 11)
	require.NoError(t, err)
	cheap, err := bcrypt.GenerateFromPassword([]byte("b"), bcrypt.MinCost)
	require.NoError(t, err)
	c, err := webconfig.Load(write(t, t.TempDir(), fmt.Sprintf("basic_auth_users:\n  alice: %s\n  bob: %s\n", costly, cheap)), quiet)
	require.NoError(t, err)
	fastest := func(user string) time.Duration {
		best := time.Hour
		for i := range 3 {
			began := time.Now()
			_, err := c.Authenticate(context.Background(), access.Credentials{User: user, Password: fmt.Sprint("wrong-", i)})
			require.ErrorIs(t, err, access.ErrUnauthenticated)
			best = min(best, time.Since(began))
		}
		return best
	}
	alice, bob, mallory := fastest("alice"), fastest("bob"), fastest("mallory")
	assert.Greater(t, float64(bob), 0.8*float64(alice), "a cheaper hash: bob %s, alice %s", bob, alice)
	assert.Greater(t, float64(mallory), 0.8*float64(alice), "an unknown user: mallory %s, alice %s", mallory, alice)
}
