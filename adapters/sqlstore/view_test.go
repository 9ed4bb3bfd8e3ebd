package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload/workloadtest"
)

// The samples view (PostgreSQL) decodes the chunks into what the store reads back: every
// sample, its value to the bit, its device and workload, before and after compaction, in
// head chunks and in blocks.
func TestSamplesViewEqualsTheStore(t *testing.T) {
	ctx := context.Background()
	url := sqlstoretest.PostgresURL(t)
	s := open(t, url)
	gpus := []telemetry.GPU{{UUID: "GPU-v", Hostname: "host-v", Index: 0, Device: "nvidia0", ModelName: "H100"},
		{UUID: "GPU-v", Instance: "3", InstanceProfile: "1g.10gb", Hostname: "host-v", Index: 0, Device: "nvidia0", ModelName: "H100"}}
	values := []float64{0, 1, -7, 42, 2147483631, 1 << 53, 310.532, -3.5, 0.000123, 1e300, -2.5e-310, math.SmallestNonzeroFloat64, 0.812345}
	for b := range 60 {
		batch := telemetry.Batch{ID: fmt.Sprint("v", b), GPUs: gpus}
		for k, v := range values {
			smp := telemetry.Sample{GPU: gpus[b%2].Key(), Metric: fmt.Sprintf("M%02d", k), Time: time.Date(2025, 7, 1, 0, 0, b, 123456000, time.UTC),
				Value: v * float64(1+b%3)}
			if k%4 == 0 {
				smp.Pod, smp.Namespace, smp.Container = fmt.Sprint("pod-", b%3), "ml", "main"
			}
			batch.Samples = append(batch.Samples, smp)
		}
		_, err := s.WriteBatch(ctx, batch)
		require.NoError(t, err)
	}
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	defer db.Close()
	check := func(when string) {
		for _, g := range gpus {
			var want []string
			_, err := s.Samples(ctx, telemetry.SampleQuery{GPU: g.Key()}, func(smp telemetry.Sample) error {
				want = append(want, fmt.Sprintf("%s %s %x %s/%s/%s", smp.Time.UTC().Format(time.RFC3339Nano), smp.Metric,
					math.Float64bits(smp.Value), smp.Container, smp.Pod, smp.Namespace))
				return nil
			})
			require.NoError(t, err)
			rows, err := db.QueryContext(ctx, `SELECT time, metric, value, container, pod, namespace FROM samples
				WHERE uuid = $1 AND gpu_instance = $2`, g.UUID, g.Instance)
			require.NoError(t, err)
			var got []string
			for rows.Next() {
				var at time.Time
				var metric, container, pod, namespace string
				var value float64
				require.NoError(t, rows.Scan(&at, &metric, &value, &container, &pod, &namespace))
				got = append(got, fmt.Sprintf("%s %s %x %s/%s/%s", at.UTC().Format(time.RFC3339Nano), metric,
					math.Float64bits(value), container, pod, namespace))
			}
			require.NoError(t, rows.Err())
			sort.Strings(want)
			sort.Strings(got)
			require.Len(t, want, 30*len(values))
			assert.Equal(t, want, got, "%s, %s", g.Key(), when)
		}
	}
	check("as written")
	_, err = s.Compact(ctx)
	require.NoError(t, err)
	check("compacted")
	st, err := s.Seal(ctx)
	require.NoError(t, err)
	require.Positive(t, st.Sealed)
	check("sealed in blocks")
	var avg float64
	require.NoError(t, db.QueryRowContext(ctx, `SELECT avg(value) FROM samples WHERE uuid = 'GPU-v' AND gpu_instance = '' AND metric = 'M03'`).Scan(&avg))
	assert.InDelta(t, 42*2.0, avg, 1e-9, "a question in plain SQL: (1+2+3)/3 × 42, as written across the GPU's batches")
}

// The two SQL questions of docs/api.md, run as written, give what the store's own reads give.
func TestDocumentedSQLAnswersLikeTheStore(t *testing.T) {
	readme, err := os.ReadFile("../../docs/api.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "### In SQL (PostgreSQL)")
	require.True(t, ok)
	_, rest, ok = strings.Cut(rest, "```sql\n")
	require.True(t, ok)
	block, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	queries := strings.SplitAfter(strings.TrimSpace(block), ";")
	require.Len(t, queries[:2], 2)

	ctx := context.Background()
	url := sqlstoretest.PostgresURL(t)
	s := open(t, url)
	now := time.Now().UTC().Truncate(time.Second)
	var gpus []telemetry.GPU
	for i := range 4 {
		gpus = append(gpus, telemetry.GPU{UUID: fmt.Sprint("GPU-sql-", i), Hostname: fmt.Sprint("host-", i/2), Index: i % 2})
	}
	for k := range 60 { // every 10 s over the last ten minutes
		at := now.Add(-time.Duration(k)*10*time.Second - 3*time.Second)
		batch := telemetry.Batch{ID: fmt.Sprint("sql", k), GPUs: gpus}
		for i, g := range gpus {
			batch.Samples = append(batch.Samples,
				telemetry.Sample{GPU: g.UUID, Metric: "DCGM_FI_DEV_GPU_UTIL", Time: at, Value: float64((k*7 + i*13) % 101)},
				telemetry.Sample{GPU: g.UUID, Metric: "DCGM_FI_DEV_GPU_TEMP", Time: at, Value: float64(40 + (k+i)%20)})
		}
		_, err := s.WriteBatch(ctx, batch)
		require.NoError(t, err)
	}
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil) // one transaction: one now() for every statement
	require.NoError(t, err)
	defer tx.Rollback()
	var sqlNow time.Time
	require.NoError(t, tx.QueryRowContext(ctx, `SELECT now()`).Scan(&sqlNow))

	sums, counts, latest := map[string]float64{}, map[string]int{}, map[string]float64{}
	for _, g := range gpus {
		_, err := s.Samples(ctx, telemetry.SampleQuery{GPU: g.UUID}, func(smp telemetry.Sample) error {
			if smp.Metric == "DCGM_FI_DEV_GPU_UTIL" && !smp.Time.Before(sqlNow.Add(-5*time.Minute)) && !smp.Time.After(sqlNow) {
				sums[g.Hostname] += smp.Value
				counts[g.Hostname]++
			}
			if smp.Metric == "DCGM_FI_DEV_GPU_TEMP" {
				latest[g.UUID] = smp.Value // samples come in time order
			}
			return nil
		})
		require.NoError(t, err)
	}

	rows, err := tx.QueryContext(ctx, queries[0])
	require.NoError(t, err)
	got := map[string]float64{}
	for rows.Next() {
		var host string
		var avg float64
		require.NoError(t, rows.Scan(&host, &avg))
		got[host] = avg
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 2)
	for host, avg := range got {
		assert.InDelta(t, sums[host]/float64(counts[host]), avg, 0.005, host)
	}

	rows, err = tx.QueryContext(ctx, queries[1])
	require.NoError(t, err)
	temps := map[string]float64{}
	for rows.Next() {
		var uuid, instance, host string
		var at time.Time
		var temp float64
		require.NoError(t, rows.Scan(&uuid, &instance, &host, &at, &temp))
		temps[uuid] = temp
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, latest, temps)
}

// The workload query of docs/api.md, run as written, gives the usage report's GPU-hours and
// energy by namespace over the month.
func TestDocumentedWorkloadSQLAnswersLikeTheUsageReport(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(doc), "### Workload records")
	require.True(t, ok)
	_, rest, ok = strings.Cut(rest, "```sql\n")
	require.True(t, ok)
	statement, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)

	ctx := context.Background()
	url := sqlstoretest.PostgresURL(t)
	s := open(t, url)
	month := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	gpus := []telemetry.GPU{{UUID: "GPU-ns-0", Hostname: "host-0"}, {UUID: "GPU-ns-1", Hostname: "host-0", Index: 1}}
	for b := range 12 { // six hours at 30 s, a pod a device every two hours, two namespaces
		batch := telemetry.Batch{ID: fmt.Sprint("ns", b), GPUs: gpus}
		for k := range 60 {
			at := month.Add(time.Duration(b*60+k) * 30 * time.Second)
			for i, g := range gpus {
				pod, ns := fmt.Sprint("job-", b/4, "-", i), []string{"vision", "speech"}[(b/4+i)%2]
				batch.Samples = append(batch.Samples,
					telemetry.Sample{GPU: g.UUID, Metric: "DCGM_FI_DEV_GPU_UTIL", Time: at, Value: float64((k * 7) % 101), Pod: pod, Namespace: ns},
					telemetry.Sample{GPU: g.UUID, Metric: "DCGM_FI_DEV_POWER_USAGE", Time: at, Value: float64(200 + k), Pod: pod, Namespace: ns},
					telemetry.Sample{GPU: g.UUID, Metric: "DCGM_FI_PROF_SM_ACTIVE", Time: at, Value: float64(k%10) / 10, Pod: pod, Namespace: ns})
			}
		}
		_, err := s.WriteBatch(ctx, batch)
		require.NoError(t, err)
	}
	rec := workload.NewRecorder(query.NewFleet(s, s), s, s, workload.Config{}, slog.New(slog.DiscardHandler))
	workloadtest.RecordAll(t, rec, time.Now())
	state, _, err := s.OpenWorkloads(ctx)
	require.NoError(t, err)
	report, err := query.NewFleet(s, s).Usage(ctx, telemetry.UsageQuery{Range: telemetry.TimeRange{Start: month, End: state.Through}, By: telemetry.GroupNamespace})
	require.NoError(t, err)

	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.QueryContext(ctx, statement)
	require.NoError(t, err)
	got := map[string][2]float64{}
	for rows.Next() {
		var at time.Time
		var ns string
		var hours, kwh float64
		require.NoError(t, rows.Scan(&at, &ns, &hours, &kwh))
		assert.True(t, at.Equal(month), "%s", at)
		got[ns] = [2]float64{hours, kwh}
	}
	require.NoError(t, rows.Err())
	require.Len(t, report.Groups, 2)
	for _, u := range report.Groups {
		assert.InDelta(t, u.GPUHours, got[u.Group][0], 0.0005, u.Group)
		assert.InDelta(t, u.EnergyKWh, got[u.Group][1], 0.0005, u.Group)
	}

	// The hourly panel's query: each whole hour of each host as the usage report has it. Its
	// "last 30 days" are those before the test's data, which is from 2025: the window is
	// moved, not the query.
	_, rest, ok = strings.Cut(rest, "```sql\n")
	require.True(t, ok)
	panel, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	panel = strings.Replace(panel, "now() - interval '30 days'", "timestamptz '2025-09-01'", 1)
	rows, err = db.QueryContext(ctx, panel)
	require.NoError(t, err)
	hours := 0
	for rows.Next() {
		var hour time.Time
		var host string
		var util, kwh, sm float64
		require.NoError(t, rows.Scan(&hour, &host, &util, &kwh, &sm))
		if !hour.Add(time.Hour).After(state.Through) {
			hours++
			want, err := query.NewFleet(s, s).Usage(ctx, telemetry.UsageQuery{Range: telemetry.TimeRange{Start: hour, End: hour.Add(time.Hour)}, By: telemetry.GroupHost})
			require.NoError(t, err)
			require.Len(t, want.Groups, 1)
			assert.InDelta(t, want.Groups[0].MeanUtil, util, 1e-9, "%s %s", hour, host)
			assert.InDelta(t, want.Groups[0].EnergyKWh, kwh, 1e-9, "%s %s", hour, host)
			assert.InDelta(t, want.Groups[0].Profiling[usage.SMField].Mean, sm, 1e-9, "%s %s", hour, host)
			assert.Greater(t, sm, 0.0)
		}
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, 5, hours, "six hours recorded, the last one not whole")
}
