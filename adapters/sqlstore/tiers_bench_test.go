package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// BenchmarkMonthOfAGPU answers a GPU's 30-day aggregate at step 1h — the console's month
// view — from the hourly tier and from the samples, on PostgreSQL holding 30 days of four
// GPUs' ten metrics every 10 s (10.4 M samples, sealed), both in the same run:
//
//	go test -run '^$' -bench MonthOfAGPU -benchtime 20x ./adapters/sqlstore
func BenchmarkMonthOfAGPU(b *testing.B) {
	ctx := context.Background()
	s := open(b, sqlstoretest.PostgresURL(b))
	gpus := compactFleet(4)
	const days, perBatch = 30, 90 // 15 minutes a batch
	start := time.Now()
	for first := 0; first < days*8640; first += perBatch {
		batch := telemetry.Batch{ID: fmt.Sprint("m", first), GPUs: gpus}
		for tick := first; tick < first+perBatch; tick++ {
			at := compactT0.Add(time.Duration(tick) * 10 * time.Second)
			for gi, g := range gpus {
				for m := range 10 {
					batch.Samples = append(batch.Samples, telemetry.Sample{GPU: g.UUID, Metric: fmt.Sprintf("DCGM_FI_TEST_%02d", m),
						Time: at, Value: float64((tick*(m+1)+gi)%101) + float64(m%3)/4})
				}
			}
		}
		_, err := s.WriteBatch(ctx, batch)
		require.NoError(b, err)
	}
	loaded := time.Since(start)
	_, err := s.Seal(ctx)
	require.NoError(b, err)
	b.Logf("loaded %d samples in %s, sealed in %s", days*8640*len(gpus)*10, loaded.Round(time.Second), (time.Since(start) - loaded).Round(time.Second))
	svc := query.New(s, s, s, s).WithTiers(s)
	q := telemetry.AggregateQuery{GPU: gpus[1].UUID, Step: time.Hour, Agg: telemetry.AggAvg,
		Range: telemetry.TimeRange{Start: compactT0, End: compactT0.Add(days*24*time.Hour - time.Microsecond)}}
	for _, res := range []struct {
		name string
		max  time.Duration
	}{{"tier", telemetry.AnyResolution}, {"raw", telemetry.RawResolution}} {
		b.Run(res.name, func(b *testing.B) {
			q.MaxResolution = res.max
			for b.Loop() {
				got, err := svc.Aggregate(ctx, q)
				require.NoError(b, err)
				require.Len(b, got.Buckets, days*24*10)
			}
		})
	}
}
