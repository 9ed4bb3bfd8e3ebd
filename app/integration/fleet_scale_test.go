package integration

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// At 100,000 GPUs, sixteen clients walking the GPU and host listings at once keep the API
// process under 150 MB: the listings are paged, each page read by key. Two clients walk
// every GPU and four every host; the others walk 20 pages each. Then the console's heatmap
// call gets a page of 10,000 GPUs and PromQL's count() the whole fleet, under 512 MB.
func TestFleetReadsAt100kGPUsStayBounded(t *testing.T) {
	slowTest(t, "a fleet of 100,000 GPUs")
	t.Parallel()
	const gpus, hostsOf = 100_000, 8 // GPUs per host
	dbURL := sqlstoretest.PostgresURL(t)
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
	require.NoError(t, err)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	const perBatch = 5000
	batches := make([]telemetry.Batch, 0, gpus/perBatch)
	for first := 0; first < gpus; first += perBatch {
		b := telemetry.Batch{ID: fmt.Sprint("fleet-", first)}
		for i := first; i < first+perBatch; i++ {
			g := telemetry.GPU{UUID: fmt.Sprintf("GPU-%08d-0000-0000-0000-000000000000", i), Hostname: fmt.Sprintf("node-%05d", i/hostsOf),
				Index: i % hostsOf, Device: fmt.Sprint("nvidia", i%hostsOf), ModelName: "NVIDIA H100 80GB HBM3",
				Labels: map[string]string{"namespace": "team-a", "pod": fmt.Sprint("trainer-", i)}}
			b.GPUs = append(b.GPUs, g)
			b.Samples = append(b.Samples, telemetry.Sample{GPU: g.UUID, Metric: "DCGM_FI_DEV_GPU_TEMP", Time: at, Value: 40})
		}
		batches = append(batches, b)
	}
	began := time.Now()
	_, err = store.WriteBatches(ctx, batches)
	require.NoError(t, err)
	t.Logf("100k GPUs written in %s", time.Since(began))
	require.NoError(t, store.Close())

	api := apptest.Spawn(t, "api", "--mode=api", "--database-url="+dbURL)
	api.WaitReady(t)
	peak := apptest.WatchRSS(api)
	get := func(path string, into any) error {
		return apptest.GetJSON(http.DefaultClient, "http://"+api.Addr+path, into)
	}
	type page struct {
		Count      int
		NextCursor string `json:"next_cursor"`
	}
	began = time.Now()
	var wg sync.WaitGroup
	seen := make([]int, 16)
	for c := range 16 {
		wg.Go(func() {
			path, limit := "/api/v1/gpus", 1000
			if c%4 == 3 {
				path = "/api/v1/hosts"
			}
			for cursor, pages := "", 0; ; pages++ {
				if c%4 != 3 && c > 1 && pages == 20 {
					return
				}
				var p page
				if !assert.NoError(t, get(fmt.Sprintf("%s?limit=%d&cursor=%s", path, limit, cursor), &p)) {
					return
				}
				seen[c] += p.Count
				if cursor = p.NextCursor; cursor == "" {
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("listings walked in %s", time.Since(began))
	for c, n := range seen {
		switch {
		case c%4 == 3:
			assert.Equal(t, gpus/hostsOf, n, "client %d walked every host", c)
		case c <= 1:
			assert.Equal(t, gpus, n, "client %d walked every GPU", c)
		default:
			assert.Equal(t, 20*1000, n, "client %d walked 20 pages", c)
		}
	}
	time.Sleep(200 * time.Millisecond) // the watcher's last look
	rss := peak()
	t.Logf("API peak RSS with 16 clients listing 100k GPUs: %d MB", rss)
	assert.Less(t, rss, int64(150), "API peak RSS (MB)")

	// The console's heatmap call and PromQL over the whole fleet stay bounded: the heatmap
	// gets a page of 10,000 GPUs and says more follow; count() reads one sample a device.
	began = time.Now()
	var latest struct {
		Count      int
		NextCursor string `json:"next_cursor"`
	}
	require.NoError(t, get("/api/v1/fleet/latest?metric=DCGM_FI_DEV_GPU_TEMP&lookback=2h", &latest))
	t.Logf("a page of /fleet/latest at 100k GPUs in %s", time.Since(began))
	assert.Equal(t, 10_000, latest.Count)
	assert.NotEmpty(t, latest.NextCursor, "the heatmap is told the fleet is larger")
	began = time.Now()
	var count struct {
		Data struct{ Result []struct{ Value [2]any } }
	}
	require.NoError(t, get("/prometheus/api/v1/query?query=count(DCGM_FI_DEV_GPU_TEMP)&time="+fmt.Sprint(at.Unix()), &count))
	t.Logf("PromQL count() over 100k GPUs in %s", time.Since(began))
	require.Len(t, count.Data.Result, 1)
	assert.Equal(t, "100000", count.Data.Result[0].Value[1])
	time.Sleep(200 * time.Millisecond)
	rss = peak()
	t.Logf("API peak RSS after the heatmap and PromQL over 100k GPUs: %d MB", rss)
	assert.Less(t, rss, int64(512), "API peak RSS (MB)")
}
