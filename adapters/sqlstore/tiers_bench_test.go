package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
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
	// What a PromQL panel of one metric over the month reads (avg_over_time(…[1h]) at step
	// 1h): every GPU's hourly buckets of that metric.
	b.Run("summaries of a metric", func(b *testing.B) {
		keys := make([]string, len(gpus))
		for i, g := range gpus {
			keys[i] = g.UUID
		}
		sq := telemetry.SummaryQuery{GPUs: keys, Metrics: []string{"DCGM_FI_TEST_03"}, Step: time.Hour, Range: q.Range}
		for b.Loop() {
			n := 0
			require.NoError(b, s.Summaries(ctx, sq, func(ss telemetry.SummarySeries) error {
				n += len(ss.Summaries)
				return nil
			}))
			require.Equal(b, days*24*len(gpus), n)
		}
	})
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

// BenchmarkMonthOfUsage answers the fleet's 30-day usage report by namespace — the
// console's 30-day usage page — over the bundled fleet's size (247 GPUs, each held by a pod
// or by none, hands changing every few hours): the recorder's sums of 30 days, and the
// samples (utilisation, power, memory and seven profiling fields every 10 s) of the last two hours, the last 3
// minutes of which are not recorded yet (the recorder's lag), as the edges the report
// reads. It reports the p99 of the calls beside ns/op, and compares with the same report of
// the last two hours read from the samples alone:
//
//	go test -run '^$' -bench MonthOfUsage -benchtime 40x ./adapters/sqlstore
func BenchmarkMonthOfUsage(b *testing.B) {
	ctx := context.Background()
	url := sqlstoretest.PostgresURL(b)
	s := open(b, url)
	gpus := compactFleet(247)
	const days = 30
	end := compactT0.Add(days * 24 * time.Hour)
	holder := func(gpu, hour int) (ns, pod string) {
		if (gpu+hour/5)%3 == 0 {
			return "", ""
		}
		return fmt.Sprint("team-", gpu%7), fmt.Sprintf("job-%d-%d", gpu, hour/5)
	}
	for first := 0; first < 720; first += 30 { // the last two hours' samples, 5 minutes a batch
		batch := telemetry.Batch{ID: fmt.Sprint("u", first), GPUs: gpus}
		for tick := first; tick < first+30; tick++ {
			at := end.Add(-2*time.Hour + time.Duration(tick)*10*time.Second)
			for gi, g := range gpus {
				ns, pod := holder(gi, days*24-2+tick/360)
				for m, v := range map[string]float64{"DCGM_FI_DEV_GPU_UTIL": float64(gi % 100), "DCGM_FI_DEV_POWER_USAGE": 300, "DCGM_FI_DEV_FB_USED": float64(1000 * (gi % 80)),
					usage.EngineField: 0.5, usage.SMField: 0.4, usage.SMOccupancyField: 0.2, usage.TensorField: 0.1, usage.DRAMField: 0.3,
					usage.PCIeTxField: 1e9, usage.PCIeRxField: 2e9} {
					batch.Samples = append(batch.Samples, telemetry.Sample{GPU: g.UUID, Metric: m, Time: at, Value: v, Namespace: ns, Pod: pod})
				}
			}
		}
		_, err := s.WriteBatch(ctx, batch)
		require.NoError(b, err)
	}
	profiling := map[string]telemetry.Weighted{}
	for _, f := range []string{usage.EngineField, usage.SMField, usage.SMOccupancyField, usage.TensorField, usage.DRAMField, usage.PCIeTxField, usage.PCIeRxField} {
		profiling[f] = telemetry.Weighted{Seconds: 3600, Sum: 3600 * 0.3}
	}
	for day := range days {
		var parts []telemetry.UsagePart
		for h := day * 24; h < (day+1)*24; h++ {
			for gi, g := range gpus {
				ns, pod := holder(gi, h)
				parts = append(parts, telemetry.UsagePart{GPU: g, Namespace: ns, Pod: pod, Start: compactT0.Add(time.Duration(h) * time.Hour),
					Signal: "DCGM_FI_DEV_GPU_UTIL", Seconds: 3600, UtilSeconds: 3600, UtilWeighted: 3600 * float64(gi%100),
					Joules: 3600 * 300, PeakMemory: float64(1000 * (gi % 80)), Samples: 360, Profiling: profiling})
			}
		}
		to := compactT0.Add(time.Duration(day+1) * 24 * time.Hour)
		if day == days-1 {
			to = end.Add(-3 * time.Minute) // the recorder's lag: Settle and a pass interval
		}
		state, _, err := s.OpenWorkloads(ctx)
		require.NoError(b, err)
		_, ok, err := s.RecordWorkloads(ctx, state, to, nil, parts)
		require.NoError(b, err)
		require.True(b, ok)
	}
	// The hourly panel of docs/api.md over the month, as Grafana's PostgreSQL data source runs it.
	db, err := sql.Open("pgx", url)
	require.NoError(b, err)
	defer db.Close()
	var hourRows, hourBytes, dayBytes int64
	require.NoError(b, db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM usage_hours), pg_total_relation_size('usage_hours'),
		pg_total_relation_size('usage_days')`).Scan(&hourRows, &hourBytes, &dayBytes))
	b.Logf("usage sums: %d hourly rows, %d bytes (%.0f a row, index included); daily: %d bytes", hourRows, hourBytes,
		float64(hourBytes)/float64(hourRows), dayBytes)
	b.Run("sql-hourly-by-host", func(b *testing.B) {
		for b.Loop() {
			rows, err := db.QueryContext(ctx, `SELECT hour, hostname, sum(util_weighted) / nullif(sum(util_seconds), 0) AS util_pct,
				sum(joules) / 3.6e6 AS energy_kwh FROM usage_hourly WHERE hour >= $1 GROUP BY 1, 2 ORDER BY 1, 2`, end.Add(-days*24*time.Hour))
			require.NoError(b, err)
			n := 0
			for rows.Next() {
				n++
			}
			require.NoError(b, rows.Err())
			require.Equal(b, days*24, n, "an hour a row: one host")
		}
	})
	fleet := query.NewFleet(s, s).WithTiers(s).WithRecords(s)
	month := telemetry.UsageQuery{By: telemetry.GroupNamespace, Range: telemetry.TimeRange{Start: end.Add(-days*24*time.Hour + 17*time.Minute), End: end}}
	lastHours := telemetry.UsageQuery{By: telemetry.GroupNamespace, Range: telemetry.TimeRange{Start: end.Add(-2 * time.Hour), End: end}}
	for _, c := range []struct {
		name string
		q    telemetry.UsageQuery
	}{{"month", month}, {"samples-2h", lastHours}} {
		b.Run(c.name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				got, err := fleet.Usage(ctx, c.q)
				took = append(took, time.Since(start))
				require.NoError(b, err)
				require.Len(b, got.Groups, 8, "7 namespaces and none")
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
