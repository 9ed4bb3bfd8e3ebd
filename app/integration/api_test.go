package integration

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
)

// These tests try the query API on the bundled data, as a user would.

const someGPU = "GPU-5fd4f087-86f3-7a43-b711-4771313afc50"

type sampleJSON struct {
	Timestamp time.Time `json:"timestamp"`
	Metric    string    `json:"metric"`
	Value     float64   `json:"value"`
}

func TestEveryEndpointOnTheBundledData(t *testing.T) {
	p := start(t, "--database-url="+sqlstoretest.SQLiteURL(t), "--loop=false", "--timestamps=csv", "--interval=0")
	p.waitForSamples(t, 2470)
	for _, path := range []string{
		"/health", "/ready", "/api/v1/gpus", "/api/v1/gpus?hostname=mtv5-dgx1-hgpu-031", "/api/v1/gpus/" + someGPU,
		"/api/v1/gpus/" + someGPU + "/telemetry", "/api/v1/gpus/" + someGPU + "/telemetry/aggregate?step=1m&agg=max",
		"/api/v1/gpus/" + someGPU + "/telemetry/export", "/api/v1/gpus/" + someGPU + "/latest",
		"/api/v1/hosts", "/api/v1/metrics", "/api/v1/stats", "/swagger/index.html", "/swagger/doc.json",
	} {
		resp, err := http.Get(p.base + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	var hosts struct {
		Data []struct {
			GPUCount int `json:"gpu_count"`
		}
	}
	p.get(t, "/api/v1/hosts", &hosts)
	total := 0
	for _, h := range hosts.Data {
		total += h.GPUCount
	}
	assert.Len(t, hosts.Data, 31)
	assert.Equal(t, 247, total)
	walkGPUs(t, p, 50, 247, 5)
	type hostPage struct {
		Data       []struct{ Hostname string }
		NextCursor string `json:"next_cursor"`
	}
	var names []string
	for cursor, pages := "", 0; ; pages++ {
		var page hostPage
		require.Equal(t, http.StatusOK, p.get(t, "/api/v1/hosts?limit=10&cursor="+cursor, &page))
		for _, h := range page.Data {
			names = append(names, h.Hostname)
		}
		if cursor = page.NextCursor; cursor == "" {
			assert.Equal(t, 3, pages, "31 hosts in four pages of ten: three with a next_cursor")
			break
		}
	}
	assert.Len(t, names, 31)
	assert.IsIncreasing(t, names)
	for path, field := range map[string]string{
		"/api/v1/gpus?limit=0": "limit", "/api/v1/gpus?limit=1001": "limit", "/api/v1/gpus?cursor=nope": "cursor",
		"/api/v1/hosts?limit=x": "limit", "/api/v1/hosts?cursor=" + url.QueryEscape("aDE6Im5vZGUtMDEi"+"x"): "cursor",
	} {
		var e struct {
			Error struct{ Code, Message string }
		}
		assert.Equal(t, http.StatusBadRequest, p.get(t, path, &e), path)
		assert.True(t, strings.HasPrefix(e.Error.Message, field+":"), "%s: %s", path, e.Error.Message)
	}
	var latest struct{ Data []sampleJSON }
	p.get(t, "/api/v1/gpus/"+someGPU+"/latest", &latest)
	assert.Len(t, latest.Data, 10, "one per metric")
	var stats struct {
		Oldest time.Time `json:"oldest_sample"`
		Newest time.Time `json:"newest_sample"`
	}
	p.get(t, "/api/v1/stats", &stats)
	assert.Equal(t, time.Date(2025, 7, 18, 20, 42, 34, 0, time.UTC), stats.Oldest)
	assert.Equal(t, time.Date(2025, 7, 18, 20, 42, 37, 0, time.UTC), stats.Newest)
}

// TestAggregationMatchesHandComputation compares every aggregation of every GPU's bundled
// samples in 2-second buckets with the same figures computed here from the CSV file.
func TestAggregationMatchesHandComputation(t *testing.T) {
	p := start(t, "--database-url="+sqlstoretest.SQLiteURL(t), "--loop=false", "--timestamps=csv", "--interval=0")
	p.waitForSamples(t, 2470)

	type key struct {
		gpu, metric string
		bucket      time.Time
	}
	values := map[key][]float64{}
	rows, err := csv.NewReader(bytes.NewReader(apptest.BundledCSV)).ReadAll()
	require.NoError(t, err)
	for _, row := range rows[1:] {
		ts, err := time.Parse(time.RFC3339, row[0])
		require.NoError(t, err)
		v, err := strconv.ParseFloat(row[10], 64)
		require.NoError(t, err)
		k := key{gpu: row[4], metric: row[1], bucket: ts.Truncate(2 * time.Second)}
		values[k] = append(values[k], v) // file order is time order
	}
	hand := func(agg string, vs []float64) float64 {
		switch agg {
		case "count":
			return float64(len(vs))
		case "last":
			return vs[len(vs)-1]
		case "min", "max":
			m := vs[0]
			for _, v := range vs {
				if (agg == "min") == (v < m) {
					m = v
				}
			}
			return m
		}
		sum := 0.0
		for _, v := range vs {
			sum += v
		}
		return sum / float64(len(vs))
	}
	gpus := []string{someGPU}
	for k := range values {
		if len(gpus) < 6 && k.gpu != gpus[len(gpus)-1] {
			gpus = append(gpus, k.gpu)
		}
	}
	for _, gpu := range gpus {
		for _, agg := range []string{"avg", "min", "max", "last", "count"} {
			var got struct {
				Data []struct {
					BucketStart time.Time `json:"bucket_start"`
					Metric      string    `json:"metric"`
					Value       float64   `json:"value"`
				}
			}
			require.Equal(t, http.StatusOK, p.get(t, "/api/v1/gpus/"+gpu+"/telemetry/aggregate?step=2s&agg="+agg, &got))
			want := 0
			for k := range values {
				if k.gpu == gpu {
					want++
				}
			}
			assert.Len(t, got.Data, want, "%s %s", gpu, agg)
			for _, b := range got.Data {
				vs := values[key{gpu: gpu, metric: b.Metric, bucket: b.BucketStart}]
				require.NotEmpty(t, vs, "%s %s %s", gpu, b.Metric, b.BucketStart)
				assert.InDelta(t, hand(agg, vs), b.Value, 1e-9, "%s %s %s %s", gpu, agg, b.Metric, b.BucketStart)
			}
		}
	}
}

// TestCursorPagingWhileStreaming pages by cursor, 7 at a time, through a window of 2,470
// samples of one GPU while another streamer keeps adding samples to that GPU, and checks
// every sample of the window comes exactly once.
func TestCursorPagingWhileStreaming(t *testing.T) {
	const uuid = "GPU-0000000-paging"
	t0 := time.Date(2025, 7, 18, 20, 0, 0, 0, time.UTC)
	var doc strings.Builder
	doc.WriteString("timestamp,metric_name,gpu_id,uuid,Hostname,value\n")
	for sec := range 247 {
		for m := range 10 {
			fmt.Fprintf(&doc, "%s,METRIC_%d,0,%s,host-p,%d\n", t0.Add(time.Duration(sec)*time.Second).Format(time.RFC3339), m, uuid, sec*10+m)
		}
	}
	file := filepath.Join(t.TempDir(), "one-gpu.csv")
	require.NoError(t, os.WriteFile(file, []byte(doc.String()), 0o644))

	dbURL := sqlstoretest.PostgresURL(t)
	// Retention off: the live samples are newer than the file's by more than its default.
	p := start(t, "--database-url="+dbURL, "--csv="+file, "--loop=false", "--timestamps=csv", "--interval=0", "--retention=0")
	p.waitForSamples(t, 2470)
	// Another process streams the same GPU from now on, while we page.
	live := start(t, "--database-url="+dbURL, "--csv="+file, "--speed=0", "--interval=5ms", "--batch-size=20", "--retention=0")
	before := p.waitForSamples(t, 2470+200).TotalRecords

	window := url.Values{"start_time": {t0.Format(time.RFC3339)}, "end_time": {t0.Add(246 * time.Second).Format(time.RFC3339)}}
	seen := map[string]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 400, "paging does not end")
		q := url.Values{"limit": {"7"}, "start_time": window["start_time"], "end_time": window["end_time"]}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Data       []sampleJSON
			NextCursor string `json:"next_cursor"`
		}
		require.Equal(t, http.StatusOK, p.get(t, "/api/v1/gpus/"+uuid+"/telemetry?"+q.Encode(), &page))
		for _, s := range page.Data {
			seen[fmt.Sprintf("%s %s %g", s.Timestamp.Format(time.RFC3339Nano), s.Metric, s.Value)]++
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	assert.Len(t, seen, 2470, "every sample of the window")
	for k, n := range seen {
		require.Equal(t, 1, n, "%s seen %d times", k, n)
	}
	var after stats
	live.get(t, "/api/v1/stats", &after)
	assert.Greater(t, after.TotalRecords, before, "samples arrived while paging")
}

func TestDatabaseDownAnswers503(t *testing.T) {
	dbURL := sqlstoretest.PostgresURL(t)
	seed := start(t, "--database-url="+dbURL, "--loop=false", "--timestamps=csv", "--interval=0")
	seed.waitForSamples(t, 2470)
	require.NoError(t, seed.stop(t))

	px := newProxy(t, "127.0.0.1:5432")
	api := start(t, "--mode=api", "--database-url="+strings.Replace(dbURL, "127.0.0.1:5432", px.addr(), 1))
	require.Equal(t, http.StatusOK, api.get(t, "/api/v1/gpus/"+someGPU, nil))
	px.cut()
	for _, path := range []string{"/api/v1/gpus", "/api/v1/stats", "/api/v1/gpus/" + someGPU + "/telemetry"} {
		var body struct{ Error struct{ Code string } }
		assert.Equal(t, http.StatusServiceUnavailable, api.get(t, path, &body), path)
		assert.Equal(t, "unavailable", body.Error.Code, path)
	}
	assert.Equal(t, http.StatusServiceUnavailable, api.get(t, "/ready", nil))
	px.restore()
	require.Eventually(t, func() bool { return api.get(t, "/api/v1/stats", nil) == http.StatusOK }, 10*time.Second, 50*time.Millisecond)
}

// walkGPUs pages through /api/v1/gpus limit at a time and checks it sees want GPUs, each
// once, in that many pages.
func walkGPUs(t *testing.T, p *process, limit, want, pages int) {
	seen := map[string]bool{}
	n := 0
	for cursor := ""; ; {
		n++
		var page struct {
			Data       []struct{ UUID string }
			Count      int
			NextCursor string `json:"next_cursor"`
		}
		require.Equal(t, http.StatusOK, p.get(t, fmt.Sprintf("/api/v1/gpus?limit=%d&cursor=%s", limit, cursor), &page))
		assert.LessOrEqual(t, page.Count, limit)
		for _, g := range page.Data {
			assert.False(t, seen[g.UUID], "GPU %s listed twice", g.UUID)
			seen[g.UUID] = true
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	assert.Len(t, seen, want)
	assert.Equal(t, pages, n, "pages")
}
