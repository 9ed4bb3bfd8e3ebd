package integration

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// The doors a hostile client or an unlucky target opens — a scrape body past its limit, a
// gzip bomb, a remote_write request of 1.5 M samples, PromQL queries that would hold
// hundreds of millions of samples — each alone, then all at once with eight heavy queries,
// leave the API process under 512 MiB, every refusal saying why.
func TestHostileLoadStaysUnder512MiB(t *testing.T) {
	slowTest(t, "hostile load against a process")
	line := []byte(`DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-big",Hostname="big"} 40` + "\n")
	over := bytes.Repeat(line, (65<<20)/len(line)+1) // 65 MiB: four times the limit
	overTarget := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(over) }))
	defer overTarget.Close()
	var bomb bytes.Buffer // ~200 MiB of exposition in well under a megabyte
	zw := gzip.NewWriter(&bomb)
	for range 3 {
		zw.Write(over)
	}
	require.NoError(t, zw.Close())
	bombTarget := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(bomb.Bytes())
	}))
	defer bombTarget.Close()

	// The process runs as in a container, whose memory limit automemlimit makes its
	// GOMEMLIMIT: the garbage collector then keeps the heap near what is live, and RSS stays
	// under 512 MiB only while what is live stays well under it, whatever the load.
	t.Setenv("GOMEMLIMIT", "360MiB")
	p := apptest.Spawn(t, "all", "--mode=all", "--database-url="+sqlstoretest.PostgresURL(t), "--remote-write",
		"--scrape-targets="+overTarget.URL+","+bombTarget.URL, "--scrape-interval=2s")
	p.WaitReady(t)
	peak := apptest.WatchRSS(p)
	base := "http://" + p.Addr

	// Scrapes: both targets down, saying why; nothing of them stored.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var targets struct {
			Data []struct {
				Health    string
				LastError string `json:"last_error"`
			}
		}
		require.NoError(c, apptest.GetJSON(http.DefaultClient, base+"/api/v1/targets", &targets))
		require.Len(c, targets.Data, 2)
		for _, tg := range targets.Data {
			assert.Equal(c, "down", tg.Health)
			assert.Contains(c, tg.LastError, "body exceeds 16777216 bytes")
		}
	}, 30*time.Second, 200*time.Millisecond)
	t.Logf("after the scrapes: peak RSS %d MB", peak())

	// remote_write: 1,000 series of 1,500 samples, 30 MB decompressed.
	write := func(from time.Time) int {
		var wr prompb.WriteRequest
		for s := range 1000 {
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "DCGM_FI_DEV_GPU_TEMP"},
				{Name: "Hostname", Value: fmt.Sprint("rw-", s/8)}, {Name: "UUID", Value: fmt.Sprint("GPU-rw-", s)}, {Name: "gpu", Value: fmt.Sprint(s % 8)}}}
			for i := range 1500 {
				ts.Samples = append(ts.Samples, prompb.Sample{Value: float64(40 + i%20), Timestamp: from.Add(time.Duration(i) * time.Second).UnixMilli()})
			}
			wr.Timeseries = append(wr.Timeseries, ts)
		}
		status, _ := call(t, &http.Client{Timeout: time.Minute}, "POST", base+"/api/v1/write", "", apptest.RemoteWriteBodyOf(t, &wr), remoteWriteHeader)
		return status
	}
	now := time.Now().Truncate(time.Second)
	assert.Contains(t, []int{204, 503}, write(now.Add(-1500*time.Second)), "stored, or retried by a sender told 503")
	t.Logf("after remote_write: peak RSS %d MB", peak())

	// PromQL: a subquery that would hold 180 M samples stops at the limit.
	heavy := func() (int, string) {
		var body struct{ Error string }
		status := getStatus(t, base+"/prometheus/api/v1/query?"+url.Values{"query": {`count_over_time(DCGM_FI_DEV_GPU_TEMP[6h:10ms])`},
			"time": {fmt.Sprint(now.Unix())}}.Encode(), &body)
		return status, body.Error
	}
	status, msg := heavy()
	assert.Equal(t, http.StatusUnprocessableEntity, status, msg)
	assert.Contains(t, msg, "query processing would load too many samples")
	t.Logf("after a heavy query: peak RSS %d MB", peak())

	// A cheap REST request's latency, idle and under the load below: logged, compared in
	// docs/performance.md (a timed assertion would fail on a busy machine, not on a fault).
	cheapCall := func() (time.Duration, bool) {
		began := time.Now()
		var page map[string]any
		err := apptest.GetJSON(http.DefaultClient, base+"/api/v1/gpus?limit=10", &page)
		return time.Since(began), err == nil
	}
	var idle []time.Duration
	for range 40 {
		if d, ok := cheapCall(); ok {
			idle = append(idle, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	logLatency(t, "idle", idle)

	// Eight heavy queries at once, the cheap request every 20 ms beside them; then the same
	// with a second remote_write request of 1.5 M samples, the scrapes going on.
	for _, withWrite := range []bool{false, true} {
		var wg sync.WaitGroup
		if withWrite {
			wg.Go(func() { write(now.Add(-3000 * time.Second)) })
		}
		statuses := make(chan int, 8)
		for range 8 {
			wg.Go(func() {
				s, _ := heavy()
				statuses <- s
			})
		}
		stop := make(chan struct{})
		var latencies []time.Duration
		var cheap sync.WaitGroup
		cheap.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if d, ok := cheapCall(); ok {
					latencies = append(latencies, d)
				}
			}
		})
		wg.Wait()
		close(stop)
		cheap.Wait()
		close(statuses)
		for s := range statuses {
			assert.Contains(t, []int{http.StatusUnprocessableEntity, http.StatusServiceUnavailable}, s, "refused at the limit, or told to retry")
		}
		when := "under eight heavy queries"
		if withWrite {
			when += " and a remote_write of 1.5 M samples"
		}
		logLatency(t, when, latencies)
	}
	time.Sleep(200 * time.Millisecond) // the watcher's last look
	rss := peak()
	t.Logf("API peak RSS through every case: %d MB", rss)
	assert.Less(t, rss, int64(512), "peak RSS (MB)")
}

// logLatency logs the median and 99th percentile of a cheap request's latencies.
func logLatency(t *testing.T, when string, latencies []time.Duration) {
	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	t.Logf("GET /api/v1/gpus?limit=10 %s: %d requests, p50 %s, p99 %s", when, len(latencies),
		latencies[len(latencies)/2], latencies[len(latencies)*99/100])
}

// getStatus GETs url, decodes its JSON body into into, and returns the status.
func getStatus(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if into != nil && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(raw, into))
	}
	return resp.StatusCode
}
