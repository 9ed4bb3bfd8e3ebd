package remotewrite_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/remotewrite"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// BenchmarkWrite decodes requests of 2,000 dcgm-exporter samples, as Prometheus sends them,
// into readings; the queue is left out.
func BenchmarkWrite(b *testing.B) {
	var wr prompb.WriteRequest
	for i := range 2000 {
		gpu, metric := i/10, i%10
		wr.Timeseries = append(wr.Timeseries, series(fmt.Sprintf("DCGM_FI_DEV_FIELD_%d", metric),
			[]prompb.Sample{{Value: float64(i), Timestamp: 1752871354000}},
			"DCGM_FI_DRIVER_VERSION", "535.104.12", "Hostname", fmt.Sprintf("node-%d", gpu/8),
			"UUID", fmt.Sprintf("GPU-%08x-86f3-7a43-b711-4771313afc50", gpu), "container", "", "device", fmt.Sprintf("nvidia%d", gpu%8),
			"gpu", fmt.Sprint(gpu%8), "instance", fmt.Sprintf("node-%d:9400", gpu/8), "job", "dcgm-exporter",
			"modelName", "NVIDIA H100 80GB HBM3", "namespace", "", "pci_bus_id", "00000000:07:00.0", "pod", ""))
	}
	raw, err := wr.Marshal()
	require.NoError(b, err)
	body := snappy.Encode(nil, raw)
	n := 0
	rw := remotewrite.New(remotewrite.Options{Publish: func(_ context.Context, rs []telemetry.Reading) error { n += len(rs); return nil }})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
		if err := rw.Write(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
}
