// Package apptest holds what the tests of the binary share, in app/ and app/integration:
// free local addresses, waiting for a listener, and the queries of the shipped dashboards.
package apptest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FreeAddr returns a local address nobody listens on, for a process to listen on later.
//
// The port comes from below the kernel's ephemeral range. A port from that range (what
// listening on port 0 hands out) can be taken, between this check and the process's own
// bind, by one of the many outgoing connections these tests open to PostgreSQL and Redis.
// Outgoing connections never use ports below the range.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return FreeAddrs(t, 1)
}

// FreeAddrs returns the first of n consecutive local addresses nobody listens on, kept from
// every other FreeAddr of the process (the simulator serves a host a port).
func FreeAddrs(t testing.TB, n int32) string {
	t.Helper()
	for range 1000 {
		first := nextPort.Add(n) - n + 1
		if first+n > ephemeralLow {
			break
		}
		if allFree(first, n) {
			return fmt.Sprintf("127.0.0.1:%d", first)
		}
	}
	t.Fatalf("no %d free ports in [%d, %d)", n, firstPort, ephemeralLow)
	return ""
}

func allFree(first, n int32) bool {
	for port := first; port < first+n; port++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false // in use
		}
		ln.Close()
	}
	return true
}

// The ports FreeAddr hands out: upwards from a random start, so that concurrent test runs
// (app and app/integration run at once) rarely meet, and below the ephemeral range.
const firstPort = 10000

var (
	ephemeralLow = ephemeralRangeStart()
	nextPort     atomic.Int32
)

func init() {
	nextPort.Store(firstPort + rand.Int32N((ephemeralLow-firstPort)/2))
}

// ephemeralRangeStart reads the first port of Linux's ephemeral range (32768 by default).
func ephemeralRangeStart() int32 {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var low, high int32
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil || low <= firstPort+1000 {
		return 32768
	}
	return low
}

// WaitListening waits until something accepts connections at addr.
func WaitListening(t testing.TB, addr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "%s listening", addr)
}

// DashboardQueries reads a shipped Grafana dashboard's panel queries, by panel title and
// target letter, with Grafana's variables given values PromQL parses.
func DashboardQueries(t testing.TB, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(raw, &d), path)
	require.NotEmpty(t, d.Panels, path)
	out := map[string]string{}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$host", ".*")
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Targets, "%s: %s has no query", path, p.Title)
		for i, tg := range p.Targets {
			out[p.Title+" #"+string(rune('A'+i))] = vars.Replace(tg.Expr)
		}
	}
	return out
}
