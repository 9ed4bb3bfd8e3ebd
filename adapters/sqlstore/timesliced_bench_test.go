package sqlstore_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// BenchmarkTimeSlicedBytes measures what a GPU time-sliced by pods costs on PostgreSQL:
// two sealed hours of ten fields every 10 s, reported once per pod with the same values (as
// dcgm-exporter reports a shared GPU), against the same GPU held by one pod. Reported: the
// chunks' bytes per sample stored and per scrape of the GPU (docs/performance.md).
func BenchmarkTimeSlicedBytes(b *testing.B) {
	for _, pods := range []int{1, 3} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			for b.Loop() {
				ctx := context.Background()
				s := open(b, sqlstoretest.PostgresURL(b))
				gpu := telemetry.GPU{UUID: "GPU-sliced", Hostname: "node-1", Index: 0, ModelName: "NVIDIA L40S"}
				t0 := compactT0
				for batch := range 24 { // 5 minutes a batch
					bt := telemetry.Batch{ID: fmt.Sprint("sliced-", batch), GPUs: []telemetry.GPU{gpu}}
					for i := batch * 30; i < (batch+1)*30; i++ {
						at := t0.Add(time.Duration(i) * 10 * time.Second)
						for m := range 10 {
							v := math.Round(50+40*math.Sin(float64(i)/30+float64(m))) + float64(m)*100
							for p := range pods {
								bt.Samples = append(bt.Samples, telemetry.Sample{GPU: gpu.Key(), Metric: fmt.Sprintf("DCGM_FI_TEST_%02d", m),
									Time: at, Value: v, Pod: fmt.Sprint("pod-", p), Namespace: "inference"})
							}
						}
					}
					_, err := s.WriteBatch(ctx, bt)
					require.NoError(b, err)
				}
				_, err := s.Seal(ctx)
				require.NoError(b, err)
				n, err := s.ChunkDataBytes(ctx)
				require.NoError(b, err)
				samples := float64(720 * 10 * pods)
				b.ReportMetric(float64(n)/samples, "bytes/sample")
				b.ReportMetric(float64(n)/720, "bytes/scrape")
			}
		})
	}
}
