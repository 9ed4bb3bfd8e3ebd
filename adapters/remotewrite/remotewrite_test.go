package remotewrite_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/remotewrite"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func request(t *testing.T, wr *prompb.WriteRequest) *http.Request {
	t.Helper()
	raw, err := wr.Marshal()
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	return req
}

func series(name string, samples []prompb.Sample, kv ...string) prompb.TimeSeries {
	ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: name}}, Samples: samples}
	for i := 0; i < len(kv); i += 2 {
		ts.Labels = append(ts.Labels, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return ts
}

func TestWriteDecodesDropsAndCounts(t *testing.T) {
	var got []telemetry.Reading
	r := remotewrite.New(remotewrite.Options{Publish: func(_ context.Context, rs []telemetry.Reading) error {
		got = append(got, rs...)
		return nil
	}})
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series("DCGM_FI_DEV_GPU_UTIL", []prompb.Sample{{Value: 87, Timestamp: 1752871354000}, {Value: math.Float64frombits(value.StaleNaN), Timestamp: 1752871355000}},
			"UUID", "GPU-a", "GPU_I_ID", "3", "Hostname", "h", "pod", "p", "namespace", "n", "instance", "h:9400", "job", "dcgm"),
		series("node_load1", []prompb.Sample{{Value: 1, Timestamp: 1752871354000}}, "instance", "h:9100", "job", "node"),
		series("up", []prompb.Sample{{Value: 1, Timestamp: 1752871354000}}, "instance", "h:9400", "job", "dcgm"),
		series("DCGM_FI_DEV_POWER_USAGE", []prompb.Sample{{Value: math.Inf(1), Timestamp: 1752871354000}}, "UUID", "GPU-a"),
	}}
	require.NoError(t, r.Write(context.Background(), request(t, wr)))
	require.Len(t, got, 2, "the staleness marker, the series without a GPU and +Inf are not samples; a target's up is")
	assert.True(t, got[1].GPU.IsTarget())
	assert.Equal(t, "up", got[1].Sample.Metric)
	assert.Equal(t, "GPU-a/3", got[0].Sample.GPU)
	assert.Equal(t, 87.0, got[0].Sample.Value)
	assert.Equal(t, int64(1752871354000), got[0].Sample.Time.UnixMilli())
	assert.Equal(t, "p", got[0].Sample.Pod)
	assert.Equal(t, map[string]string{"instance": "h:9400", "job": "dcgm"}, got[0].GPU.Labels)
	assert.Equal(t, remotewrite.Stats{Requests: 1, Samples: 2, Stale: 1, NoDevice: 1, Rejected: 1}, r.Stats())
}

func TestWriteRefusals(t *testing.T) {
	published := 0
	queueDown := false
	r := remotewrite.New(remotewrite.Options{Publish: func(context.Context, []telemetry.Reading) error {
		if queueDown {
			return errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
		}
		published++
		return nil
	}})
	garbage := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader([]byte("not snappy at all")))
	assert.ErrorIs(t, r.Write(context.Background(), garbage), telemetry.ErrInvalid)

	notProto := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(snappy.Encode(nil, []byte{0xff, 0xff, 0xff})))
	assert.ErrorIs(t, r.Write(context.Background(), notProto), telemetry.ErrInvalid)

	v2 := request(t, &prompb.WriteRequest{})
	v2.Header.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
	assert.ErrorIs(t, r.Write(context.Background(), v2), telemetry.ErrUnsupported)

	queueDown = true
	ok := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("M", []prompb.Sample{{Value: 1, Timestamp: 1}}, "UUID", "GPU-a")}}
	assert.ErrorIs(t, r.Write(context.Background(), request(t, ok)), telemetry.ErrUnavailable)
	assert.Zero(t, published)
	assert.Equal(t, remotewrite.Stats{Malformed: 3, Unavailable: 1}, r.Stats())
}

// A sender that keeps sending what cannot be read is told 400 every time and logged once,
// not once a request.
func TestMalformedRequestsLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	r := remotewrite.New(remotewrite.Options{Publish: func(context.Context, []telemetry.Reading) error { return nil },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 5 {
		garbage := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader([]byte("not snappy at all")))
		assert.ErrorIs(t, r.Write(context.Background(), garbage), telemetry.ErrInvalid)
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "refused as malformed"), logs.String())
	assert.Contains(t, logs.String(), "is not snappy-compressed")
	assert.EqualValues(t, 5, r.Stats().Malformed)
}

// Requests beyond MaxConcurrent wait for a turn within the timeout, then are unavailable
// (503, which Prometheus retries), counted; a turn freed in time lets the next one in.
func TestConcurrentRequestsAreBounded(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	r := remotewrite.New(remotewrite.Options{MaxConcurrent: 1, Timeout: 200 * time.Millisecond,
		Publish: func(context.Context, []telemetry.Reading) error {
			entered <- struct{}{}
			<-release // a slow request, holding its turn past the others' timeout
			return nil
		}})
	body := func() *http.Request {
		return request(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			series("DCGM_FI_DEV_GPU_UTIL", []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}}, "UUID", "GPU-a")}})
	}
	first := make(chan error, 1)
	go func() { first <- r.Write(context.Background(), body()) }()
	<-entered // the first holds the only turn
	err := r.Write(context.Background(), body())
	assert.ErrorIs(t, err, telemetry.ErrUnavailable)
	assert.ErrorContains(t, err, "1 requests are being received at once")
	assert.EqualValues(t, 1, r.Stats().Unavailable)
	close(release)
	require.NoError(t, <-first)
	require.NoError(t, r.Write(context.Background(), body()), "the turn freed")
	assert.Len(t, entered, 1, "the refused request never reached the queue")
}
