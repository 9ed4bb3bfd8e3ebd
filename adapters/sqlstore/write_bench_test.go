package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// BenchmarkWriteBatch stores batches shaped like the bundled file's: 1,000 samples over 247
// GPUs, four metrics each. Reports samples/s through one writer.
func BenchmarkWriteBatch(b *testing.B) {
	for name, newURL := range map[string]func(testing.TB) string{
		"postgres": sqlstoretest.PostgresURL, "sqlite": sqlstoretest.SQLiteURL,
	} {
		b.Run(name, func(b *testing.B) {
			s := open(b, newURL(b))
			var gpus []telemetry.GPU
			for i := range 247 {
				gpus = append(gpus, telemetry.GPU{UUID: fmt.Sprintf("GPU-%03d", i), Hostname: fmt.Sprintf("host-%02d", i/8), Index: i % 8})
			}
			metrics := []string{"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_FB_USED"}
			t0 := time.Now()
			b.ResetTimer()
			for i := range b.N {
				batch := telemetry.Batch{ID: fmt.Sprint("w", i), GPUs: gpus}
				for k := range 1000 {
					batch.Samples = append(batch.Samples, telemetry.Sample{GPU: gpus[k%len(gpus)].UUID, Metric: metrics[k/len(gpus)%len(metrics)],
						Time: t0.Add(time.Duration(i*1000+k) * time.Microsecond), Value: float64(k % 100)})
				}
				_, err := s.WriteBatch(context.Background(), batch)
				require.NoError(b, err)
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkSamplesPage reads 1,000-sample pages of one GPU out of chunks shaped as the
// pipeline writes them by default — ten metrics a scrape, two scrapes a batch — then out of
// the same chunks compacted.
func BenchmarkSamplesPage(b *testing.B) {
	s := open(b, sqlstoretest.PostgresURL(b))
	gpu := telemetry.GPU{UUID: "GPU-bench", Hostname: "host", Index: 0}
	t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	for batch := range 500 {
		bt := telemetry.Batch{ID: fmt.Sprint("p", batch), GPUs: []telemetry.GPU{gpu}}
		for tick := range 2 {
			for m := range 10 {
				bt.Samples = append(bt.Samples, telemetry.Sample{GPU: gpu.UUID, Metric: fmt.Sprint("DCGM_FI_DEV_", m),
					Time: t0.Add(time.Duration(batch*2+tick) * 10 * time.Second), Value: float64(tick * m)})
			}
		}
		_, err := s.WriteBatch(context.Background(), bt)
		require.NoError(b, err)
	}
	q := telemetry.SampleQuery{GPU: gpu.UUID, Range: telemetry.TimeRange{Start: t0.Add(time.Hour), End: t0.Add(2 * time.Hour)},
		Page: telemetry.Page{Limit: 1000}}
	read := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			_, err := s.Samples(context.Background(), q, func(telemetry.Sample) error {
				n++
				return nil
			})
			require.NoError(b, err)
			require.Equal(b, 1000, n)
		}
	}
	b.Run("as written", read)
	st, err := s.Compact(context.Background())
	require.NoError(b, err)
	require.Equal(b, 1, st.GPUs)
	b.Run("compacted", read)
}
