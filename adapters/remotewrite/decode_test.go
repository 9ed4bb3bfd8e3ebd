package remotewrite_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
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

// reference decodes a WriteRequest with prompb's generated code, as the Prometheus project
// does, into the readings and counts the receiver must produce.
func reference(raw []byte) ([]telemetry.Reading, remotewrite.Stats, error) {
	var wr prompb.WriteRequest
	var counts remotewrite.Stats
	if err := wr.Unmarshal(raw); err != nil {
		return nil, counts, err
	}
	var out []telemetry.Reading
	for _, ts := range wr.Timeseries {
		if len(ts.Samples) == 0 {
			continue
		}
		var labels []telemetry.Label
		for _, l := range ts.Labels {
			labels = append(labels, telemetry.Label{Name: l.Name, Value: l.Value})
		}
		series, err := telemetry.SeriesReading(labels)
		switch {
		case errors.Is(err, telemetry.ErrNoDevice):
			counts.NoDevice += int64(len(ts.Samples))
			continue
		case err != nil || series.Sample.Metric == "" || series.CheckSeries() != nil:
			counts.Rejected += int64(len(ts.Samples))
			continue
		}
		for _, s := range ts.Samples {
			switch {
			case value.IsStaleNaN(s.Value):
				counts.Stale++
				continue
			case math.IsNaN(s.Value) || math.IsInf(s.Value, 0):
				counts.Rejected++
				continue
			}
			r := series
			r.Sample.Value, r.Sample.Time = s.Value, time.UnixMilli(s.Timestamp).UTC()
			if telemetry.CheckTime(r.Sample.Time) != nil {
				counts.Rejected++
				continue
			}
			out = append(out, r)
		}
	}
	if len(out) > 0 {
		counts.Requests, counts.Samples = 1, int64(len(out))
	}
	return out, counts, nil
}

// decodeRaw sends raw, snappy-compressed, to a new receiver.
func decodeRaw(raw []byte) ([]telemetry.Reading, remotewrite.Stats, error) {
	var got []telemetry.Reading
	r := remotewrite.New(remotewrite.Options{Publish: func(_ context.Context, rs []telemetry.Reading) error {
		got = append(got, rs...)
		return nil
	}})
	req := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	err := r.Write(context.Background(), req)
	st := r.Stats()
	if st.Samples == 0 {
		st.Requests = 0
	}
	return got, st, err
}

func sampleRequests() []*prompb.WriteRequest {
	stale := math.Float64frombits(value.StaleNaN)
	gpu := []string{"UUID", "GPU-a", "gpu", "0", "Hostname", "node-1", "modelName", "NVIDIA H100", "instance", "node-1:9400", "job", "dcgm"}
	return []*prompb.WriteRequest{
		{},
		{Timeseries: []prompb.TimeSeries{
			series("DCGM_FI_DEV_GPU_UTIL", []prompb.Sample{{Value: 87, Timestamp: 1752871354000}, {Value: stale, Timestamp: 1752871355000}}, gpu...),
			series("DCGM_FI_DEV_GPU_UTIL", []prompb.Sample{{Value: 88, Timestamp: 1752871356000}}, gpu...), // the same series again
			series("DCGM_FI_PROF_GR_ENGINE_ACTIVE", []prompb.Sample{{Value: 0.5, Timestamp: 1}},
				append([]string{"GPU_I_ID", "3", "GPU_I_PROFILE", "1g.10gb", "exported_pod", "p", "pod", "prom-0"}, gpu...)...),
			series("up", []prompb.Sample{{Value: 1, Timestamp: 1752871354000}}, "instance", "h:9100", "job", "node"),
			series("DCGM_FI_DEV_POWER_USAGE", []prompb.Sample{{Value: math.Inf(1), Timestamp: 2}, {Value: math.NaN(), Timestamp: 3}, {Value: -1, Timestamp: -4}}, gpu...),
			{Labels: []prompb.Label{{Name: "UUID", Value: "GPU-b"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 5}}}, // no name
			series("DCGM_FI_DEV_FB_USED", nil, gpu...), // no samples
			series("DCGM_FI_DEV_FB_FREE", []prompb.Sample{{Value: 1, Timestamp: 6}}, "UUID", "GPU-\x00", "Hostname", "h"),
			series("DCGM_FI_DEV_FB_FREE", []prompb.Sample{{Value: 1, Timestamp: 7}}, "UUID", "GPU-d", "Hostname", "h\xff"),
			series("DCGM_FI_DEV_FB_FREE", []prompb.Sample{{Value: 1, Timestamp: math.MaxInt64}, {Value: 2, Timestamp: 8}}, gpu...), // a time not kept
		}},
		{ // what remote_write senders add beside samples: metadata, exemplars, histograms
			Timeseries: []prompb.TimeSeries{{
				Labels:     []prompb.Label{{Name: "__name__", Value: "DCGM_FI_DEV_SM_CLOCK"}, {Name: "UUID", Value: "GPU-c"}},
				Samples:    []prompb.Sample{{Value: 1410, Timestamp: 1752871354000}},
				Exemplars:  []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: 1}},
				Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 3}, Sum: 1, Timestamp: 1}},
			}},
			Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "DCGM_FI_DEV_SM_CLOCK", Help: "SM clock"}},
		},
	}
}

// The receiver reads every request as prompb's generated decoder does.
func TestDecodeAgreesWithPrompb(t *testing.T) {
	for i, wr := range sampleRequests() {
		raw, err := wr.Marshal()
		require.NoError(t, err)
		want, wantStats, err := reference(raw)
		require.NoError(t, err)
		got, gotStats, err := decodeRaw(raw)
		require.NoError(t, err, "request %d", i)
		assert.Equal(t, want, got, "request %d", i)
		assert.Equal(t, wantStats, gotStats, "request %d", i)
	}
}

// A request both decoders read comes out the same; one the receiver cannot read is refused
// as invalid, never a panic. (The receiver is stricter than gogo-protobuf on one point: it
// refuses field numbers beyond protobuf's 2^29-1, which gogo skips.)
func FuzzDecode(f *testing.F) {
	for _, wr := range sampleRequests() {
		raw, err := wr.Marshal()
		require.NoError(f, err)
		f.Add(raw)
	}
	f.Add([]byte{0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01})
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, gotStats, err := decodeRaw(raw)
		want, wantStats, refErr := reference(raw)
		if err != nil {
			require.ErrorIs(t, err, telemetry.ErrInvalid)
			return
		}
		if refErr == nil {
			assert.Equal(t, want, got)
			assert.Equal(t, wantStats, gotStats)
		}
	})
}
