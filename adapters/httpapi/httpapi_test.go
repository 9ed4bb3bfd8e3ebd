package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/httpapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func init() { gin.SetMode(gin.ReleaseMode) }

var t0 = time.Date(2025, 7, 18, 20, 42, 34, 0, time.UTC)

const gpuA = "GPU-5fd4f087-86f3-7a43-b711-4771313afc50"

// newAPI serves a store holding two GPUs on two hosts, each with samples of two metrics at
// t0 … t0+3s.
func newAPI(t testing.TB, edit ...func(*httpapi.Options)) *httpapi.API {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstoretest.SQLiteURL(t), sqlstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	gpus := []telemetry.GPU{
		{UUID: gpuA, Hostname: "host-a", Index: 0, Device: "nvidia0", ModelName: "NVIDIA H100 80GB HBM3", DriverVersion: "535.129.03"},
		{UUID: "GPU-b", Hostname: "host-b", Index: 1, Device: "nvidia1", ModelName: "NVIDIA H100 80GB HBM3", DriverVersion: "535.129.03"},
	}
	for sec := range 4 {
		b := telemetry.Batch{ID: "b" + string(rune('0'+sec)), GPUs: gpus}
		for _, g := range gpus {
			for _, m := range []string{"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE"} {
				b.Samples = append(b.Samples, telemetry.Sample{GPU: g.UUID, Metric: m, Time: t0.Add(time.Duration(sec) * time.Second), Value: float64(sec)})
			}
		}
		_, err := store.WriteBatch(ctx, b)
		require.NoError(t, err)
	}
	opts := httpapi.Options{Query: query.New(store, store, store, store), Fleet: query.NewFleet(store, store), Workloads: store, Ready: store.Ping, Logger: slog.New(slog.DiscardHandler)}
	for _, e := range edit {
		e(&opts)
	}
	return httpapi.New(opts)
}

func get(t *testing.T, h http.Handler, target string, into any) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	if into != nil {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), into), rec.Body.String())
	}
	return rec
}

func TestProbes(t *testing.T) {
	api := newAPI(t)
	var st httpapi.Status
	assert.Equal(t, http.StatusOK, get(t, api, "/health", &st).Code)
	assert.Equal(t, "ok", st.Status)
	assert.Equal(t, http.StatusOK, get(t, api, "/ready", &st).Code)

	down := httpapi.New(httpapi.Options{Logger: slog.New(slog.DiscardHandler),
		Ready: func(context.Context) error { return errors.New("database unreachable") }})
	assert.Equal(t, http.StatusServiceUnavailable, get(t, down, "/ready", &st).Code)
	assert.Equal(t, "database unreachable", st.Reason)
	assert.Equal(t, http.StatusNotFound, get(t, down, "/api/v1/gpus", nil).Code, "probes-only API has no query routes")
}

func TestGPUs(t *testing.T) {
	var list httpapi.GPUList
	rec := get(t, newAPI(t), "/api/v1/gpus", &list)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Equal(t, 2, list.Count)
	first, last := t0, t0.Add(3*time.Second)
	assert.Equal(t, httpapi.GPU{UUID: gpuA, Hostname: "host-a", GPUIndex: 0, Device: "nvidia0",
		ModelName: "NVIDIA H100 80GB HBM3", DriverVersion: "535.129.03", FirstSeen: &first, LastSeen: &last}, list.Data[0])

	var one httpapi.GPU
	require.Equal(t, http.StatusOK, get(t, newAPI(t), "/api/v1/gpus/GPU-b", &one).Code)
	assert.Equal(t, "host-b", one.Hostname)
	assert.Equal(t, http.StatusNotFound, get(t, newAPI(t), "/api/v1/gpus/GPU-nope", nil).Code)

	for query, want := range map[string]int{"?hostname=host-b": 1, "?model=NVIDIA%20H100%2080GB%20HBM3": 2, "?hostname=x": 0} {
		var filtered httpapi.GPUList
		get(t, newAPI(t), "/api/v1/gpus"+query, &filtered)
		assert.Len(t, filtered.Data, want, query)
		assert.NotNil(t, filtered.Data)
	}
	var raw struct{ Data []map[string]any }
	get(t, newAPI(t), "/api/v1/gpus", &raw)
	assert.Subset(t, keys(raw.Data[0]), []string{"uuid", "hostname", "gpu_index", "device", "model_name"})
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestTelemetryWindows(t *testing.T) {
	api := newAPI(t)
	tests := []struct {
		query string
		want  int
	}{
		{"", 8},
		{"?start_time=2025-07-18T20:42:35Z", 6},
		{"?end_time=2025-07-18T20:42:35Z", 4},
		{"?start_time=2025-07-18T20:42:35Z&end_time=2025-07-18T20:42:35Z", 2},
		{"?start_time=2025-07-18T22:42:35%2B02:00&end_time=2025-07-18T20:42:36.000Z", 4},
		{"?start_time=2025-07-18T20:42:34.5Z&end_time=2025-07-18T20:42:35.5Z", 2},
		{"?limit=3", 3},
		{"?limit=3&offset=6", 2},
		{"?offset=100", 0},
		{"?limit=1000", 8},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var page httpapi.TelemetryPage
			rec := get(t, api, "/api/v1/gpus/"+gpuA+"/telemetry"+tt.query, &page)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.Len(t, page.Data, tt.want)
			assert.Equal(t, tt.want, page.Count)
			assert.NotNil(t, page.Data, "an empty page is [], not null")
			for i := 1; i < len(page.Data); i++ {
				assert.False(t, page.Data[i].Timestamp.Before(page.Data[i-1].Timestamp), "ordered by time")
			}
		})
	}
	var page httpapi.TelemetryPage
	get(t, api, "/api/v1/gpus/"+gpuA+"/telemetry?limit=1", &page)
	assert.NotEmpty(t, page.NextCursor)
	page.NextCursor = ""
	assert.Equal(t, httpapi.TelemetryPage{UUID: gpuA, Count: 1, Limit: 1, Offset: 0, Data: []httpapi.Sample{
		{Timestamp: t0, Metric: "DCGM_FI_DEV_GPU_UTIL", Value: 0},
	}}, page)
}

func TestBadRequests(t *testing.T) {
	api := newAPI(t)
	base := "/api/v1/gpus/" + gpuA + "/telemetry"
	tests := []struct {
		target string
		status int
		code   string
		msg    string
	}{
		{base + "?start_time=yesterday", 400, "invalid_argument", "start_time"},
		{base + "?end_time=2025-07-18", 400, "invalid_argument", "end_time"},
		{base + "?start_time=2025-07-18T20:42:36Z&end_time=2025-07-18T20:42:35Z", 400, "invalid_argument", "end_time: is before start_time"},
		{base + "?limit=0", 400, "invalid_argument", "limit: must be between 1 and 1000"},
		{base + "?limit=1001", 400, "invalid_argument", "limit"},
		{base + "?limit=-5", 400, "invalid_argument", "limit"},
		{base + "?limit=ten", 400, "invalid_argument", "limit: \"ten\" is not an integer"},
		{base + "?order=sideways", 400, "invalid_argument", "order"},
		{base + "?cursor=nonsense", 400, "invalid_argument", "cursor"},
		{base + "?cursor=djE6MTox&offset=3", 400, "invalid_argument", "offset: cannot be combined with cursor"},
		{base + "/aggregate?step=soon", 400, "invalid_argument", "step"},
		{base + "/aggregate", 400, "invalid_argument", "step: is required"},
		{base + "/aggregate?step=1500ms", 400, "invalid_argument", "step: must be whole seconds"},
		{base + "/aggregate?step=1m&agg=median", 400, "invalid_argument", "agg"},
		{base + "/aggregate?step=1s&start_time=2025-01-01T00:00:00Z&end_time=2025-12-31T00:00:00Z", 400, "invalid_argument", "steps"},
		{base + "?step=1m", 400, "invalid_argument", "step: is not a parameter of this route: see /api/v1/gpus/" + gpuA + "/telemetry/aggregate"},
		{base + "?format=csv", 400, "invalid_argument", "format: is not a parameter of this route: see /api/v1/gpus/" + gpuA + "/telemetry/export"},
		{base + "/export?start_time=yesterday", 400, "invalid_argument", "start_time"},
		{"/api/v1/gpus/GPU-unknown/latest", 404, "not_found", "GPU-unknown"},
		{"/api/v1/gpus/GPU-unknown/telemetry/aggregate?step=1m", 404, "not_found", "GPU-unknown"},
		{"/api/v1/gpus/GPU-unknown/telemetry/export", 404, "not_found", "GPU-unknown"},
		{base + "?offset=-1", 400, "invalid_argument", "offset"},
		{base + "?offset=99999999999999999999", 400, "invalid_argument", "offset"},
		{"/api/v1/gpus/GPU-unknown/telemetry", 404, "not_found", "GPU-unknown"},
		{"/api/v1/nothing", 404, "not_found", "/api/v1/nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			var body httpapi.ErrorBody
			rec := get(t, api, tt.target, &body)
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, tt.code, body.Error.Code)
			assert.Contains(t, body.Error.Message, tt.msg)
		})
	}
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/gpus", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

func TestTelemetryFiltersCursorAndUnixTimes(t *testing.T) {
	api := newAPI(t)
	base := "/api/v1/gpus/" + gpuA + "/telemetry"
	var page httpapi.TelemetryPage
	get(t, api, base+"?metric=DCGM_FI_DEV_POWER_USAGE&order=desc", &page)
	require.Len(t, page.Data, 4)
	for _, s := range page.Data {
		assert.Equal(t, "DCGM_FI_DEV_POWER_USAGE", s.Metric)
	}
	assert.Equal(t, t0.Add(3*time.Second), page.Data[0].Timestamp, "newest first")

	get(t, api, base+fmt.Sprintf("?start_time=%d&end_time=%d.5", t0.Unix()+1, t0.Unix()+1), &page)
	assert.Len(t, page.Data, 2, "Unix seconds work too")

	seen := map[string]bool{}
	next := base + "?limit=3"
	for pages := 0; next != ""; pages++ {
		require.Less(t, pages, 10)
		var p httpapi.TelemetryPage
		require.Equal(t, http.StatusOK, get(t, api, next, &p).Code)
		for _, s := range p.Data {
			key := s.Metric + s.Timestamp.String()
			assert.False(t, seen[key], "seen twice: %s", key)
			seen[key] = true
		}
		next = ""
		if p.NextCursor != "" {
			next = base + "?limit=3&cursor=" + p.NextCursor
		}
	}
	assert.Len(t, seen, 8)
}

func TestAggregation(t *testing.T) {
	var agg httpapi.AggregatePage
	rec := get(t, newAPI(t), "/api/v1/gpus/"+gpuA+"/telemetry/aggregate?step=2s&agg=max&metric=DCGM_FI_DEV_GPU_UTIL", &agg)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "2s", agg.Step)
	assert.Equal(t, "max", agg.Agg)
	// Values 0,1,2,3 at t0..t0+3s; t0 = 20:42:34, so 2s buckets start at :34 and :36.
	assert.Equal(t, []httpapi.Bucket{
		{BucketStart: t0, Metric: "DCGM_FI_DEV_GPU_UTIL", Value: 1, Count: 2},
		{BucketStart: t0.Add(2 * time.Second), Metric: "DCGM_FI_DEV_GPU_UTIL", Value: 3, Count: 2},
	}, agg.Data)
	get(t, newAPI(t), "/api/v1/gpus/"+gpuA+"/telemetry/aggregate?step=1m", &agg)
	assert.Equal(t, "avg", agg.Agg, "avg by default")
	require.Len(t, agg.Data, 2, "one bucket per metric")
	assert.Equal(t, 1.5, agg.Data[0].Value)
}

func TestCSVExport(t *testing.T) {
	api := newAPI(t)
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/api/v1/gpus/"+gpuA+"/telemetry/export?end_time=2025-07-18T20:42:35Z", nil),
	} {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "text/csv; charset=utf-8", rec.Header().Get("Content-Type"))
		assert.Equal(t, "timestamp,metric,value,container,pod,namespace\n"+
			"2025-07-18T20:42:34Z,DCGM_FI_DEV_GPU_UTIL,0,,,\n"+
			"2025-07-18T20:42:34Z,DCGM_FI_DEV_POWER_USAGE,0,,,\n"+
			"2025-07-18T20:42:35Z,DCGM_FI_DEV_GPU_UTIL,1,,,\n"+
			"2025-07-18T20:42:35Z,DCGM_FI_DEV_POWER_USAGE,1,,,\n", rec.Body.String())
	}
	rec := get(t, api, "/api/v1/gpus/"+gpuA+"/telemetry/export?start_time=2030-01-01T00:00:00Z", nil)
	assert.Equal(t, "timestamp,metric,value,container,pod,namespace\n", rec.Body.String(), "an empty window is just the header")
}

func TestLatestHostsMetrics(t *testing.T) {
	api := newAPI(t)
	var latest httpapi.LatestList
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/gpus/"+gpuA+"/latest", &latest).Code)
	require.Len(t, latest.Data, 2)
	assert.Equal(t, httpapi.Sample{Timestamp: t0.Add(3 * time.Second), Metric: "DCGM_FI_DEV_GPU_UTIL", Value: 3}, latest.Data[0])

	var hosts httpapi.HostList
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/hosts", &hosts).Code)
	last := t0.Add(3 * time.Second)
	assert.Equal(t, []httpapi.Host{{Hostname: "host-a", GPUCount: 1, LastSeen: &last}, {Hostname: "host-b", GPUCount: 1, LastSeen: &last}}, hosts.Data)

	var metrics httpapi.MetricList
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/metrics", &metrics).Code)
	assert.Equal(t, []httpapi.Metric{
		{Name: "DCGM_FI_DEV_GPU_UTIL", Unit: "%", Description: "GPU utilization"},
		{Name: "DCGM_FI_DEV_POWER_USAGE", Unit: "W", Description: "Power draw"},
	}, metrics.Data)
}

func TestStats(t *testing.T) {
	var st httpapi.Stats
	require.Equal(t, http.StatusOK, get(t, newAPI(t), "/api/v1/stats", &st).Code)
	oldest, newest := t0, t0.Add(3*time.Second)
	assert.Equal(t, httpapi.Stats{TotalRecords: 16, UniqueGPUs: 2, UniqueHosts: 2, OldestSample: &oldest, NewestSample: &newest}, st)
}

func TestSwagger(t *testing.T) {
	api := newAPI(t)
	var spec struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	require.Equal(t, http.StatusOK, get(t, api, "/swagger/doc.json", &spec).Code)
	for _, path := range []string{"/health", "/ready", "/api/v1/gpus", "/api/v1/gpus/{uuid}", "/api/v1/gpus/{uuid}/telemetry",
		"/api/v1/gpus/{uuid}/latest", "/api/v1/hosts", "/api/v1/metrics", "/api/v1/stats"} {
		assert.Contains(t, spec.Paths, path)
	}
	rec := get(t, api, "/swagger/index.html", nil)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), "swagger-ui")
}

func TestServeStopsGracefully(t *testing.T) {
	api := newAPI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.ServeListener(ctx, ln, 5*time.Second) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/health")
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	assert.Equal(t, http.StatusServiceUnavailable, get(t, api, "/ready", nil).Code, "not ready once stopping")
}

func TestMounts(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "mounted "+r.URL.Path) })
	api := httpapi.New(httpapi.Options{Logger: slog.New(slog.DiscardHandler), Mounts: map[string]http.Handler{"/queues": h}})
	for _, path := range []string{"/queues", "/queues/api/queues"} {
		rec := get(t, api, path, nil)
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "mounted "+path, rec.Body.String())
	}
}

// FuzzTelemetryQuery: whatever the query string, the telemetry endpoint answers 200 or a
// 4xx with the one error shape, never a 5xx. `go test -fuzz FuzzTelemetryQuery
// ./adapters/httpapi` explores further.
func FuzzTelemetryQuery(f *testing.F) {
	api := newAPI(f)
	for _, q := range []string{"", "limit=7&order=desc", "start_time=1752871354&end_time=2025-07-18T20:42:37.5Z",
		"step=1s&agg=max&metric=DCGM_FI_DEV_GPU_UTIL", "format=csv", "cursor=djE6MTc1Mjg3MTM1NTAwMDAwMDox&limit=1",
		"step=1m&agg=count&start_time=0", "offset=3&limit=2", "metric=&metric=%00"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		route := []string{"", "/aggregate", "/export"}[len(query)%3]
		req.URL = &url.URL{Path: "/api/v1/gpus/" + gpuA + "/telemetry" + route, RawQuery: query}
		req.RequestURI = req.URL.RequestURI()
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		require.Less(t, rec.Code, 500, "%s: %s", query, rec.Body.String())
		if rec.Code >= 400 {
			var body httpapi.ErrorBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
			require.NotEmpty(t, body.Error.Code)
			require.NotEmpty(t, body.Error.Message)
		}
	})
}

// A MIG-partitioned GPU reports through its instances only: the API lists it once, with its
// 7 instances under it, and serves each instance's telemetry and attribution apart.
func TestMIGInstancesUnderTheirGPU(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstoretest.SQLiteURL(t), sqlstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	b := telemetry.Batch{ID: "mig"}
	for i := range 7 {
		g := telemetry.GPU{UUID: "GPU-mig", Instance: fmt.Sprint(i + 1), InstanceProfile: "1g.10gb", Hostname: "host-m",
			Index: 0, ModelName: "NVIDIA A100-SXM4-80GB", Labels: map[string]string{"job": "dcgm"}}
		b.GPUs = append(b.GPUs, g)
		b.Samples = append(b.Samples, telemetry.Sample{GPU: g.Key(), Metric: "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
			Time: t0.Add(time.Duration(i) * time.Second), Value: float64(i), Pod: fmt.Sprint("train-", i), Namespace: "team-a", Container: "main"})
	}
	_, err = store.WriteBatch(ctx, b)
	require.NoError(t, err)
	api := httpapi.New(httpapi.Options{Query: query.New(store, store, store, store), Logger: slog.New(slog.DiscardHandler)})

	var list httpapi.GPUList
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/gpus", &list).Code)
	require.Len(t, list.Data, 1, "one GPU")
	gpu := list.Data[0]
	assert.Equal(t, "GPU-mig", gpu.UUID)
	assert.Empty(t, gpu.GPUInstance)
	assert.Equal(t, "NVIDIA A100-SXM4-80GB", gpu.ModelName)
	require.Len(t, gpu.MIGInstances, 7)
	assert.Equal(t, t0, *gpu.FirstSeen)
	assert.Equal(t, t0.Add(6*time.Second), *gpu.LastSeen, "the GPU's span covers its instances'")
	for i, inst := range gpu.MIGInstances {
		assert.Equal(t, fmt.Sprint(i+1), inst.GPUInstance)
		assert.Equal(t, "1g.10gb", inst.GPUInstanceProfile)
		assert.Equal(t, map[string]string{"job": "dcgm"}, inst.Labels)
	}

	var one httpapi.GPU
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/gpus/GPU-mig?gpu_instance=3", &one).Code)
	assert.Equal(t, "3", one.GPUInstance, "the instance, not its GPU")
	assert.Equal(t, "1g.10gb", one.GPUInstanceProfile)
	assert.Equal(t, t0.Add(2*time.Second), *one.FirstSeen)
	var missing httpapi.ErrorBody
	assert.Equal(t, http.StatusNotFound, get(t, api, "/api/v1/gpus/GPU-mig?gpu_instance=9", &missing).Code)
	assert.Contains(t, missing.Error.Message, "no MIG instance 9")

	var page httpapi.TelemetryPage
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/gpus/GPU-mig/telemetry?gpu_instance=3", &page).Code)
	require.Len(t, page.Data, 1)
	assert.Equal(t, httpapi.Sample{Timestamp: t0.Add(2 * time.Second), Metric: "DCGM_FI_PROF_GR_ENGINE_ACTIVE", Value: 2,
		Container: "main", Pod: "train-2", Namespace: "team-a"}, page.Data[0])
	var latest httpapi.LatestList
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/gpus/GPU-mig/latest?gpu_instance=7", &latest).Code)
	require.Len(t, latest.Data, 1)
	assert.Equal(t, "train-6", latest.Data[0].Pod)
	require.Equal(t, http.StatusOK, get(t, api, "/api/v1/gpus/GPU-mig/latest", &latest).Code,
		"the GPU reports nothing of its own: it answers with its instances' values")
	require.Len(t, latest.Data, 7)
	for i, smp := range latest.Data {
		assert.Equal(t, fmt.Sprint(i+1), smp.GPUInstance)
		assert.Equal(t, fmt.Sprint("train-", i), smp.Pod)
	}

	var e httpapi.ErrorBody
	assert.Equal(t, http.StatusNotFound, get(t, api, "/api/v1/gpus/GPU-mig/telemetry", &e).Code,
		"the GPU has no samples of its own")
	assert.Equal(t, http.StatusNotFound, get(t, api, "/api/v1/gpus/GPU-mig/telemetry?gpu_instance=8", &e).Code)
	assert.Contains(t, e.Error.Message, "no MIG instance 8")
	assert.Equal(t, http.StatusBadRequest, get(t, api, "/api/v1/gpus/GPU-mig/telemetry?gpu_instance=x", &e).Code)
	assert.Contains(t, e.Error.Message, "gpu_instance")
}

// HEAD works on every GET route: the GET's status and headers, without the body.
func TestHeadOnEveryGetRoute(t *testing.T) {
	srv := httptest.NewServer(newAPI(t))
	defer srv.Close()
	for _, path := range []string{"/health", "/ready", "/api/v1/gpus", "/api/v1/gpus/" + gpuA,
		"/api/v1/gpus/" + gpuA + "/telemetry", "/api/v1/gpus/" + gpuA + "/latest", "/api/v1/hosts",
		"/api/v1/metrics", "/api/v1/stats", "/api/v1/gpus/GPU-nope", "/api/v1/gpus/" + gpuA + "/telemetry?limit=0"} {
		get, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		get.Body.Close()
		head, err := http.Head(srv.URL + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(head.Body)
		head.Body.Close()
		assert.Equal(t, get.StatusCode, head.StatusCode, path)
		assert.Equal(t, get.Header.Get("Content-Type"), head.Header.Get("Content-Type"), path)
		assert.Empty(t, body, path)
	}
}

// An aggregation that stops at its maximum of values says so.
func TestAggregationCutShortSaysSo(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstoretest.SQLiteURL(t), sqlstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	gpu := telemetry.GPU{UUID: gpuA, Hostname: "host-a"}
	b := telemetry.Batch{ID: "long", GPUs: []telemetry.GPU{gpu}}
	for sec := range query.MaxBuckets + 5 {
		b.Samples = append(b.Samples, telemetry.Sample{GPU: gpuA, Metric: "DCGM_FI_DEV_GPU_UTIL", Time: t0.Add(time.Duration(sec) * time.Second), Value: 1})
	}
	_, err = store.WriteBatch(ctx, b)
	require.NoError(t, err)
	api := httpapi.New(httpapi.Options{Query: query.New(store, store, store, store), Logger: slog.New(slog.DiscardHandler)})
	for window, want := range map[string]bool{"": true, "&end_time=" + t0.Add(99*time.Second).Format(time.RFC3339): false} {
		var page httpapi.AggregatePage
		rec := get(t, api, "/api/v1/gpus/"+gpuA+"/telemetry/aggregate?step=1s"+window, &page)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Equal(t, want, page.Truncated, "window %q: %d values", window, page.Count)
		if want {
			assert.Equal(t, query.MaxBuckets, page.Count)
		}
	}
}
