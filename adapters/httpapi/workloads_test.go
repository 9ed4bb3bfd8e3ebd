package httpapi_test

import (
	"context"
	"encoding/csv"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/httpapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload/workloadtest"
)

// newWorkloadFleet serves newUsageFleet's day with its workload records made.
func newWorkloadFleet(t *testing.T) http.Handler {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstoretest.SQLiteURL(t), sqlstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	_, err = store.WriteBatch(ctx, usageFleetBatch())
	require.NoError(t, err)
	rec := workload.NewRecorder(query.NewFleet(store, store), store, store, workload.Config{}, slog.New(slog.DiscardHandler))
	workloadtest.RecordAll(t, rec, time.Now())
	return httpapi.New(httpapi.Options{Query: query.New(store, store, store, store), Fleet: query.NewFleet(store, store),
		Workloads: store, Logger: slog.New(slog.DiscardHandler)})
}

func listWorkloads(t *testing.T, api http.Handler, params url.Values) httpapi.WorkloadList {
	t.Helper()
	var out httpapi.WorkloadList
	rec := get(t, api, "/api/v1/workloads?"+params.Encode(), &out)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, len(out.Data), out.Count)
	return out
}

func TestWorkloadRecordsOfADay(t *testing.T) {
	api := newWorkloadFleet(t)
	all := listWorkloads(t, api, url.Values{})
	pods := map[string][]httpapi.Workload{}
	for _, w := range all.Data {
		pods[w.Pod] = append(pods[w.Pod], w)
	}
	require.Len(t, pods["train"], 1)
	train := pods["train"][0]
	assert.False(t, train.Open, "train went silent on GPU-A")
	assert.Equal(t, "GPU-A", train.UUID)
	assert.Equal(t, "h1", train.Hostname)
	assert.True(t, train.Start.Equal(t0) && train.End.Equal(t0.Add(12*time.Hour)), "%s to %s", train.Start, train.End)
	assert.InDelta(t, 12, train.GPUHours, 1e-9)
	assert.InDelta(t, 90, *train.P95Utilization, 0)
	assert.InDelta(t, 0, *train.IdleFraction, 0)
	assert.Nil(t, train.SMActive, "no profiling field: absent, not 0")
	assert.Equal(t, "not_reported", train.EfficiencyClass, "no profiling field: not reported, never idle")
	require.Len(t, pods["eval"], 2, "GPU-B's half hour of silence ends a hold")
	// Recorded up to 2 minutes (the settling time) behind the last sample, GPU-C's at 24:01:
	// GPU-B's last, at 23:59, stands until 23:59.
	assert.InDelta(t, 24-1.0/60-30.0/60, pods["eval"][0].GPUHours+pods["eval"][1].GPUHours, 1e-9)
	assert.True(t, pods["eval"][0].Open)
	assert.False(t, pods["eval"][1].Open)

	// Each record equals the usage report of its pod over its hold.
	for _, w := range all.Data {
		var report httpapi.UsageReport
		q := url.Values{"by": {"pod"}, "start_time": {w.Start.Format(time.RFC3339Nano)}, "end_time": {w.End.Format(time.RFC3339Nano)},
			"hostname": {w.Hostname}}
		require.Equal(t, http.StatusOK, get(t, api, "/api/v1/fleet/usage?"+q.Encode(), &report).Code)
		var found bool
		for _, u := range report.Data {
			if u.Group == w.Namespace+"/"+w.Pod {
				found = true
				assert.InDelta(t, u.GPUHours, w.GPUHours, 1e-9, w.Pod)
				assert.InDelta(t, u.EnergyKWh, w.EnergyKWh, 1e-9, w.Pod)
				assert.InDelta(t, *u.MeanUtilization, *w.MeanUtilization, 1e-9, w.Pod)
				assert.InDelta(t, *u.PeakMemoryMiB, *w.PeakMemoryMiB, 0, w.Pod)
			}
		}
		assert.True(t, found, "%s in %+v", w.Pod, report.Data)
	}

	// Filters and pages.
	assert.Len(t, listWorkloads(t, api, url.Values{"namespace": {"team-b"}}).Data, 1)
	assert.Len(t, listWorkloads(t, api, url.Values{"uuid": {"GPU-B"}}).Data, 2)
	assert.Len(t, listWorkloads(t, api, url.Values{"state": {"closed"}}).Data, 2)
	assert.Len(t, listWorkloads(t, api, url.Values{"end_time": {t0.Add(time.Hour).Format(time.RFC3339)}, "start_time": {t0.Format(time.RFC3339)}}).Data, 3)
	seen := map[int64]bool{}
	for cursor, pages := "", 0; ; pages++ {
		q := url.Values{"limit": {"1"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		page := listWorkloads(t, api, q)
		for _, w := range page.Data {
			assert.False(t, seen[w.ID], "each record once")
			seen[w.ID] = true
		}
		if cursor = page.NextCursor; cursor == "" {
			assert.Equal(t, len(all.Data)-1, pages)
			break
		}
	}
	assert.Len(t, seen, len(all.Data))
}

func TestWorkloadRecordsAsCSV(t *testing.T) {
	api := newWorkloadFleet(t)
	want := listWorkloads(t, api, url.Values{})
	req := httptest.NewRequest(http.MethodGet, "/api/v1/workloads?limit=1", nil)
	req.Header.Set("Accept", "text/csv")
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	rows, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+len(want.Data), "every record, not a page")
	assert.Equal(t, "id", rows[0][0])
	assert.Equal(t, want.Data[0].Pod, rows[1][6])
	assert.Equal(t, "", rows[1][17], "sm_active not reported: empty")
	assert.Equal(t, "not_reported", rows[1][22], "efficiency_class")
	assert.Equal(t, []string{"gr_engine_active", "sm_occupancy", "fp16_active", "fp32_active", "fp64_active", "pcie_tx_share",
		"pcie_rx_share", "nvlink_tx_share", "nvlink_rx_share"}, rows[0][23:], "the other profiling shares, after the class")
	for _, row := range rows[1:] {
		assert.Len(t, row, len(rows[0]))
	}
}

func TestBadWorkloadQueries(t *testing.T) {
	api := newWorkloadFleet(t)
	for param, value := range map[string]string{"limit": "0", "state": "running", "start_time": "yesterday", "cursor": "bogus", "format": "xml"} {
		rec := get(t, api, "/api/v1/workloads?"+url.Values{param: {value}}.Encode(), nil)
		assert.Equal(t, http.StatusBadRequest, rec.Code, param)
		assert.Contains(t, rec.Body.String(), param)
	}
}
