package remotewrite_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/remotewrite"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/access"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// A request is handed to the queue a chunk at a time: its memory is its body and one chunk.
func TestLargeRequestIsPublishedInChunks(t *testing.T) {
	var sizes []int
	r := remotewrite.New(remotewrite.Options{Chunk: 1000, Publish: func(_ context.Context, rs []telemetry.Reading) error {
		sizes = append(sizes, len(rs))
		return nil
	}})
	now := time.Now().UnixMilli()
	var wr prompb.WriteRequest
	for i := range 2500 {
		wr.Timeseries = append(wr.Timeseries, series("DCGM_FI_DEV_GPU_UTIL", []prompb.Sample{{Value: 1, Timestamp: now}}, "UUID", fmt.Sprint("GPU-", i%100), "pod", fmt.Sprint("p", i)))
	}
	require.NoError(t, r.Write(context.Background(), request(t, &wr)))
	assert.Equal(t, []int{1000, 1000, 500}, sizes)
	assert.EqualValues(t, 2500, r.Stats().Samples)
}

// Series that are all refused leave nothing behind: 40 requests of 1.2 MB, each series with
// thousands of labels, take the heap where it was (the cache holds accepted series only).
func TestRefusedSeriesLeaveTheHeapWhereItWas(t *testing.T) {
	var logs bytes.Buffer
	r := remotewrite.New(remotewrite.Options{Publish: func(context.Context, []telemetry.Reading) error { return nil },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	body := func(n int) *prompb.WriteRequest {
		var wr prompb.WriteRequest
		for s := range 12 {
			kv := []string{"UUID", fmt.Sprintf("GPU-%d-%d", n, s)}
			for l := range 5000 {
				kv = append(kv, fmt.Sprintf("label_%d", l), fmt.Sprintf("value-%d-%d", n, l))
			}
			wr.Timeseries = append(wr.Timeseries, series("DCGM_FI_DEV_GPU_UTIL", []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}}, kv...))
		}
		return &wr
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	require.NoError(t, r.Write(context.Background(), request(t, body(-1)))) // the pooled buffers, once
	before := heap()
	for n := range 40 {
		req := request(t, body(n))
		require.NoError(t, r.Write(context.Background(), req), "a refused series costs its samples, not the request")
	}
	after := heap()
	assert.Less(t, int64(after)-int64(before), int64(8<<20), "heap %d → %d bytes", before, after)
	assert.EqualValues(t, 41*12, r.Stats().Rejected)
	assert.Zero(t, r.Stats().Samples)
	assert.Equal(t, 1, strings.Count(logs.String(), "series refused"), "logged once a minute")
	assert.Contains(t, logs.String(), "labels: 5000 of them, more than 64", "the log says which limit")
}

// A sender bringing more new devices in a minute than MaxNewDevices is told 503 (retried by
// Prometheus); the devices it was allowed, and other senders, go on.
func TestNewDevicesPerSenderAreBounded(t *testing.T) {
	published := 0
	r := remotewrite.New(remotewrite.Options{MaxNewDevices: 100, Publish: func(_ context.Context, rs []telemetry.Reading) error {
		published += len(rs)
		return nil
	}})
	devices := func(from, to int) *prompb.WriteRequest {
		var wr prompb.WriteRequest
		for i := from; i < to; i++ {
			wr.Timeseries = append(wr.Timeseries, series("DCGM_FI_DEV_GPU_UTIL", []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}}, "UUID", fmt.Sprint("GPU-", i)))
		}
		return &wr
	}
	flood := access.WithClient(context.Background(), "anonymous 10.0.0.9")
	other := access.WithClient(context.Background(), "prometheus")
	err := r.Write(flood, request(t, devices(0, 150)))
	require.ErrorIs(t, err, telemetry.ErrUnavailable)
	assert.ErrorContains(t, err, "sender anonymous 10.0.0.9 brought 0 new devices this minute and this request 150 more, past the 100 allowed")
	assert.Zero(t, published)
	require.NoError(t, r.Write(flood, request(t, devices(0, 60))))
	require.NoError(t, r.Write(flood, request(t, devices(0, 60))), "devices seen are not new")
	require.NoError(t, r.Write(other, request(t, devices(1000, 1100))), "another sender has its own budget")
	assert.ErrorIs(t, r.Write(flood, request(t, devices(60, 110))), telemetry.ErrUnavailable)
	assert.Equal(t, 220, published)
	assert.EqualValues(t, 2, r.Stats().Limited)
}
