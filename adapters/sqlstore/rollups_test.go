package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports/portstest"
)

// bucketKey names a bucket of a series of a GPU.
type bucketKey struct {
	metric, pod string
	start       time.Time
}

// rawBuckets computes each bucket of step from the raw samples of a GPU, as the tiers
// should hold it.
func rawBuckets(samples []telemetry.Sample, step time.Duration) map[bucketKey]*engine.Bucket {
	out := map[bucketKey]*engine.Bucket{}
	for _, smp := range samples { // in time order
		k := bucketKey{smp.Metric, smp.Pod, smp.Time.Truncate(step)}
		b := out[k]
		if b == nil {
			b = &engine.Bucket{Min: smp.Value, Max: smp.Value, First: smp.Value}
			out[k] = b
		}
		b.Count++
		b.Sum += smp.Value
		b.Min, b.Max, b.Last = min(b.Min, smp.Value), max(b.Max, smp.Value), smp.Value
	}
	return out
}

// requireTiersMatchRaw checks every bucket of every tier of a GPU against its raw samples
// in [from, to).
func requireTiersMatchRaw(t *testing.T, s *sqlstore.Store, uuid string, from, to time.Time) {
	t.Helper()
	ctx := context.Background()
	raw := exportAll(t, s, telemetry.SampleQuery{GPU: uuid, Range: telemetry.TimeRange{Start: from, End: to.Add(-time.Microsecond)}})
	require.NotEmpty(t, raw)
	for _, tier := range engine.Tiers {
		want := rawBuckets(raw, tier.Step)
		got, names, err := s.RollupsOf(ctx, tier.Step, uuid, from, to)
		require.NoError(t, err)
		require.Len(t, got, len(want), "%s buckets of %s", tier.Step, uuid)
		var counted int64
		for _, b := range got {
			pod := ""
			if b.Work != nil {
				pod = b.Work.Pod
			}
			k := bucketKey{names[b.Metric], pod, time.UnixMicro(b.Start).UTC()}
			w := want[k]
			require.NotNil(t, w, "a %s bucket no sample is in: %+v", tier.Step, k)
			assert.Equal(t, w.Count, b.Count, "count of the %s bucket %+v", tier.Step, k)
			assert.InDelta(t, w.Sum, b.Sum, 1e-9*math.Abs(w.Sum), "sum of %+v", k)
			assert.Equal(t, []float64{w.Min, w.Max, w.First, w.Last}, []float64{b.Min, b.Max, b.First, b.Last}, "%+v", k)
			counted += b.Count
		}
		assert.Equal(t, int64(len(raw)), counted, "the %s tier counts every sample once", tier.Step)
	}
}

// Resent batches, the same samples replayed under other batch IDs, points arriving after
// their window was sealed, compactors racing and passes cut short: each bucket of each tier
// still counts every raw sample it covers once.
func TestTiersCountEverySampleOnce(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpus := compactFleet(6)
		const ticks = 6 * 360 // six hours at 10 s
		writeTicks(t, s, "a", gpus, 3, 0, ticks, 30)
		// Sent again: recognised by ID.
		for b := 0; b < ticks; b += 30 * 7 {
			batch := telemetry.Batch{ID: fmt.Sprintf("a-%d", b), GPUs: gpus}
			stored, err := s.WriteBatch(ctx, batch)
			require.NoError(t, err)
			assert.False(t, stored)
		}
		// Replayed under other IDs (a streamer restarted from the start of its file).
		writeTicks(t, s, "replay", gpus, 3, 1000, 400, 40)

		// Compactors racing, and passes cut short as a crash would.
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				for range 4 {
					short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
					_, err := s.Compact(short)
					if short.Err() == nil { // else cut short, each driver saying so its own way
						assert.NoError(t, err)
					}
					cancel()
				}
			})
		}
		wg.Wait()
		_, err := s.Seal(ctx)
		require.NoError(t, err)
		for _, g := range gpus[:2] {
			requireTiersMatchRaw(t, s, g.UUID, compactT0, compactT0.Add(24*time.Hour))
		}

		// Late points for the first window, sealed already: its rows are computed again.
		writeTicksShifted(t, s, "late", gpus, 3, 0, 90, 30, 5*time.Second)
		_, err = s.Seal(ctx)
		require.NoError(t, err)
		for _, g := range gpus[:2] {
			requireTiersMatchRaw(t, s, g.UUID, compactT0, compactT0.Add(24*time.Hour))
		}
		n5, err := s.RollupRows(ctx, 5*time.Minute)
		require.NoError(t, err)
		n1, err := s.RollupRows(ctx, time.Hour)
		require.NoError(t, err)
		assert.Equal(t, []int64{int64(len(gpus)), int64(len(gpus))}, []int64{n5, n1},
			"a row per GPU and day of 5-minute buckets, a row per GPU and week of hourly ones")
	})
}

// A day is written into the hourly tier once it is over, not as each of its twelve windows
// seals (each write of a week's row left a dead copy of it behind); until then, reads at
// the hourly step take it from its 5-minute row. Points arriving late write it again.
func TestHourlyTierTakesADayOnceItIsOver(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpus := compactFleet(3)
		// And one that stops at four in the morning of the second day: its windows of that
		// day all sealed, the day not over.
		quiet := telemetry.GPU{UUID: "GPU-quiet", Hostname: "host-q"}
		compactAll := func() (coarsened int) {
			for {
				st, err := s.Compact(ctx)
				require.NoError(t, err)
				coarsened += st.Coarsened
				if st.GPUs == 0 && st.Coarsened == 0 {
					return coarsened
				}
			}
		}
		requireHourlyMatchRaw := func() {
			t.Helper()
			keys := []string{gpus[0].UUID, quiet.UUID}
			for _, key := range keys {
				raw := exportAll(t, s, telemetry.SampleQuery{GPU: key})
				require.NotEmpty(t, raw)
				want := rawBuckets(raw, time.Hour)
				got := 0
				require.NoError(t, s.Summaries(ctx, telemetry.SummaryQuery{GPUs: []string{key}, Step: time.Hour,
					Range: telemetry.TimeRange{Start: compactT0, End: compactT0.Add(30*time.Hour - time.Microsecond)}}, func(ss telemetry.SummarySeries) error {
					for _, b := range ss.Summaries {
						w := want[bucketKey{ss.Metric, ss.Pod, time.UnixMicro(b.Start).UTC()}]
						require.NotNil(t, w, "an hour no sample is in")
						assert.Equal(t, w.Count, b.Count)
						assert.InDelta(t, w.Sum, b.Sum, 1e-9*math.Abs(w.Sum))
						got++
					}
					return nil
				}))
				assert.Equal(t, len(want), got, "every hour of %s", key)
			}
		}
		writeTicks(t, s, "d", gpus, 2, 0, 30*360, 60) // a day, and six hours of the next
		writeTicks(t, s, "q", []telemetry.GPU{quiet}, 2, 0, 28*360, 60)
		gpus = append(gpus, quiet)
		assert.Equal(t, len(gpus), compactAll(), "the first day of each GPU, once, at the end of its windows")
		second, _, err := s.RollupsOf(ctx, time.Hour, gpus[0].UUID, compactT0.Add(24*time.Hour), compactT0.Add(30*time.Hour))
		require.NoError(t, err)
		assert.Empty(t, second, "the day still going is not in the hourly rows")
		requireHourlyMatchRaw()

		writeTicksShifted(t, s, "late", gpus, 2, 360, 30, 30, 5*time.Second) // into the first day's second hour
		// The late points are head chunks in a day the hourly rows hold: read with them.
		requireHourlyMatchRaw()
		assert.Equal(t, len(gpus), compactAll(), "the first day again, once")
		requireHourlyMatchRaw()
	})
}

// Two collectors, each with its own store, compact the same database at once.
func TestTiersOfTwoCollectors(t *testing.T) {
	url := sqlstoretest.PostgresURL(t)
	a, b := open(t, url), open(t, url)
	gpus := compactFleet(20)
	writeTicks(t, a, "a", gpus, 3, 0, 3*360, 60)
	var wg sync.WaitGroup
	for _, s := range []*sqlstore.Store{a, b} {
		wg.Go(func() {
			_, err := s.Seal(context.Background())
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	for _, g := range gpus[:3] {
		requireTiersMatchRaw(t, b, g.UUID, compactT0, compactT0.Add(24*time.Hour))
	}
}

// Retention cuts each tier at its own age, a row (a day of 5-minute buckets) at a time, and
// a coarser row is never computed again from finer buckets retention has deleted.
func TestTiersRetention(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpus := compactFleet(2)
		writeTicks(t, s, "a", gpus, 2, 20*360, 8*360, 120) // eight hours across midnight
		_, err := s.Seal(ctx)
		require.NoError(t, err)
		hourly := func() []engine.Bucket {
			bs, _, err := s.RollupsOf(ctx, time.Hour, gpus[0].UUID, compactT0, compactT0.Add(48*time.Hour))
			require.NoError(t, err)
			return bs
		}
		before := hourly()
		require.Len(t, before, 8*4, "eight hours of a metric of three pods and one of none")

		// Keep samples and 5-minute buckets from the second day on, hourly ones for ever.
		cut := compactT0.Add(24 * time.Hour)
		st, err := s.Prune(ctx, sqlstore.Cutoffs{Raw: cut, Tiers: []time.Time{cut, {}}})
		require.NoError(t, err)
		assert.Equal(t, int64(2), st.Rollups, "the first day's 5-minute row of each GPU")
		n5, err := s.RollupRows(ctx, 5*time.Minute)
		require.NoError(t, err)
		assert.Equal(t, int64(2), n5)

		// The first day is answered from its hourly buckets, but the window a start within
		// an hour cuts, whose samples are gone: said so.
		svc := query.New(s, s, s, s).WithTiers(s)
		res, err := svc.Aggregate(ctx, telemetry.AggregateQuery{GPU: gpus[0].UUID, Step: time.Hour, Agg: telemetry.AggCount,
			Metrics: []string{"DCGM_FI_TEST_01"}, Range: telemetry.TimeRange{Start: compactT0.Add(20*time.Hour + 30*time.Minute), End: compactT0.Add(26 * time.Hour)}})
		require.NoError(t, err)
		var hours []int
		for _, b := range res.Buckets {
			hours = append(hours, b.Start.Hour())
		}
		assert.Equal(t, []int{22, 23, 0, 1, 2}, hours, "hours 20 and 21, in the window the start cuts, are gone with their samples (and 2 holds the sample at the inclusive end)")
		assert.Len(t, res.Warnings, 1)
		// From the samples, the first day's buckets are empty: said so too.
		res, err = svc.Aggregate(ctx, telemetry.AggregateQuery{GPU: gpus[0].UUID, Step: time.Minute, Agg: telemetry.AggCount,
			Metrics: []string{"DCGM_FI_TEST_01"}, Range: telemetry.TimeRange{Start: compactT0.Add(23 * time.Hour), End: compactT0.Add(25 * time.Hour)}})
		require.NoError(t, err)
		assert.Equal(t, 61, len(res.Buckets), "the second day's hour, its end inclusive")
		assert.Len(t, res.Warnings, 1)
		// Within the samples kept, nothing to say.
		res, err = svc.Aggregate(ctx, telemetry.AggregateQuery{GPU: gpus[0].UUID, Step: time.Minute, Agg: telemetry.AggCount,
			Range: telemetry.TimeRange{Start: compactT0.Add(24 * time.Hour), End: compactT0.Add(25 * time.Hour)}})
		require.NoError(t, err)
		assert.Empty(t, res.Warnings)

		// A late point in the first day, whose 5-minute buckets are gone: its hourly ones
		// stay as they were, rather than computed from that point alone.
		writeTicksShifted(t, s, "late", gpus, 2, 22*360, 1, 1, 3*time.Second)
		_, err = s.Seal(ctx)
		require.NoError(t, err)
		assert.Equal(t, before, hourly())
		// One in the second day counts.
		writeTicksShifted(t, s, "late2", gpus, 2, 26*360, 1, 1, 3*time.Second)
		_, err = s.Seal(ctx)
		require.NoError(t, err)
		after := hourly()
		var added int64
		for i := range after {
			added += after[i].Count - before[i].Count
		}
		assert.Equal(t, int64(2), added, "the late point of each metric")
	})
}

// The tiers read in SQL (PostgreSQL's samples_5m, samples_1h and their functions) are the
// store's buckets, row for row.
func TestTiersInSQL(t *testing.T) {
	ctx := context.Background()
	url := sqlstoretest.PostgresURL(t)
	s := open(t, url)
	gpus := compactFleet(3)
	writeTicks(t, s, "a", gpus, 2, 0, 5*360, 90)
	_, err := s.Seal(ctx)
	require.NoError(t, err)
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	defer db.Close()
	for _, tier := range engine.Tiers {
		name := map[time.Duration]string{5 * time.Minute: "5m", time.Hour: "1h"}[tier.Step]
		for _, from := range []string{"samples_" + name, "telemetry_samples_" + name + "('2025-07-01T01:00:00Z', '2025-07-01T03:59:59Z')"} {
			var want []string
			lo, hi := compactT0, compactT0.Add(24*time.Hour)
			if from[0] == 't' {
				lo, hi = compactT0.Add(time.Hour), compactT0.Add(4*time.Hour)
			}
			for _, g := range gpus {
				bs, names, err := s.RollupsOf(ctx, tier.Step, g.UUID, lo, hi)
				require.NoError(t, err)
				for _, b := range bs {
					pod := ""
					if b.Work != nil {
						pod = b.Work.Pod
					}
					want = append(want, fmt.Sprintf("%s %s %s %s %d %g %g %g %g %g %g", time.UnixMicro(b.Start).UTC().Format(time.RFC3339), g.UUID,
						names[b.Metric], pod, b.Count, b.Sum, b.Min, b.Max, b.Last, b.Increase, b.Avg()))
				}
			}
			rows, err := db.QueryContext(ctx, `SELECT time, uuid, metric, pod, count, sum, min, max, last, increase, avg FROM `+from)
			require.NoError(t, err)
			var got []string
			for rows.Next() {
				var at time.Time
				var uuid, metric, pod string
				var count int64
				var sum, lo, hi, last, inc, avg float64
				require.NoError(t, rows.Scan(&at, &uuid, &metric, &pod, &count, &sum, &lo, &hi, &last, &inc, &avg))
				got = append(got, fmt.Sprintf("%s %s %s %s %d %g %g %g %g %g %g", at.UTC().Format(time.RFC3339), uuid, metric, pod, count, sum, lo, hi, last, inc, avg))
			}
			require.NoError(t, rows.Err())
			require.NotEmpty(t, want)
			sort.Strings(want)
			sort.Strings(got)
			assert.Equal(t, want, got, from)
		}
	}
	// api.md's daily mean of a host, from the hourly tier, is the mean of its samples.
	var mean float64
	require.NoError(t, db.QueryRowContext(ctx, `SELECT sum(sum) / sum(count) FROM telemetry_samples_1h($1, $2)
		WHERE metric = 'DCGM_FI_TEST_01' AND hostname = 'host-c' GROUP BY date_trunc('day', time)`, compactT0, compactT0.Add(24*time.Hour)).Scan(&mean))
	var sum float64
	var n int
	for _, g := range gpus {
		for _, smp := range exportAll(t, s, telemetry.SampleQuery{GPU: g.UUID, Metrics: []string{"DCGM_FI_TEST_01"}}) {
			sum += smp.Value
			n++
		}
	}
	assert.InDelta(t, sum/float64(n), mean, 1e-9)
}

func TestSummaryReaderContract(t *testing.T) {
	seal := func(t *testing.T, s portstest.SummaryStore) {
		_, err := s.(*sqlstore.Store).Seal(context.Background())
		require.NoError(t, err)
	}
	t.Run("sqlite", func(t *testing.T) {
		portstest.TestSummaryReader(t, func(t *testing.T) portstest.SummaryStore { return open(t, sqlstoretest.SQLiteURL(t)) }, seal)
	})
	t.Run("postgres", func(t *testing.T) {
		portstest.TestSummaryReader(t, func(t *testing.T) portstest.SummaryStore { return open(t, sqlstoretest.PostgresURL(t)) }, seal)
	})
}

func TestWorkloadStoreContract(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		portstest.TestWorkloadStore(t, func(t *testing.T) portstest.WorkloadStore { return open(t, sqlstoretest.SQLiteURL(t)) })
	})
	t.Run("postgres", func(t *testing.T) {
		portstest.TestWorkloadStore(t, func(t *testing.T) portstest.WorkloadStore { return open(t, sqlstoretest.PostgresURL(t)) })
	})
}

// Windows sealed before the tiers existed get their rows from the compactor, a few a pass.
func TestTiersOfWindowsSealedBefore(t *testing.T) {
	for name, newURL := range map[string]func(testing.TB) string{"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			url := newURL(t)
			s := open(t, url)
			gpus := compactFleet(24)
			writeTicks(t, s, "a", gpus, 2, 0, 5*360, 180)
			_, err := s.Seal(ctx)
			require.NoError(t, err)
			want, _, err := s.RollupsOf(ctx, time.Hour, gpus[5].UUID, compactT0, compactT0.Add(24*time.Hour))
			require.NoError(t, err)
			require.NoError(t, s.ForgetRollups(ctx))

			upgraded := open(t, url) // a new version's first start
			st, err := upgraded.Compact(ctx)
			require.NoError(t, err)
			assert.Equal(t, 64, st.Backfilled, "a batch a pass")
			assert.True(t, st.More)
			total, err := upgraded.Seal(ctx)
			require.NoError(t, err)
			assert.Equal(t, 24*3-64, total.Backfilled, "every window of every GPU")
			got, _, err := upgraded.RollupsOf(ctx, time.Hour, gpus[5].UUID, compactT0, compactT0.Add(24*time.Hour))
			require.NoError(t, err)
			assert.Equal(t, len(want), len(got))
			requireTiersMatchRaw(t, upgraded, gpus[5].UUID, compactT0, compactT0.Add(24*time.Hour))
		})
	}
}

// Samples kept longer than the 5-minute tier (--retention=0) are not taken for windows
// sealed before the tiers, pass after pass.
func TestTiersBelowTheirRetentionAreNotBackfilled(t *testing.T) {
	ctx := context.Background()
	url := sqlstoretest.PostgresURL(t)
	s := open(t, url)
	gpus := compactFleet(2)
	writeTicks(t, s, "a", gpus, 2, 20*360, 8*360, 120) // eight hours across midnight
	_, err := s.Seal(ctx)
	require.NoError(t, err)
	_, err = s.Prune(ctx, sqlstore.Cutoffs{Tiers: []time.Time{compactT0.Add(24 * time.Hour), {}}})
	require.NoError(t, err)
	st, err := open(t, url).Compact(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Backfilled, "the first day's windows, whose 5-minute row retention deleted")
	requireTiersMatchRaw(t, s, gpus[0].UUID, compactT0.Add(24*time.Hour), compactT0.Add(48*time.Hour))
}

// Retention waits for a window to be sealed, its samples in the tiers, before it deletes
// them: an import faster than compaction keeps its history.
func TestRetentionWaitsForTheTiers(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpus := compactFleet(2)
		writeTicks(t, s, "a", gpus, 2, 0, 6*360, 60)
		cut := sqlstore.Cutoffs{Raw: compactT0.Add(4 * time.Hour)}
		st, err := s.Prune(ctx, cut)
		require.NoError(t, err)
		assert.Zero(t, st.Samples, "head chunks are not sealed yet")
		_, err = s.Seal(ctx)
		require.NoError(t, err)
		st, err = s.Prune(ctx, cut)
		require.NoError(t, err)
		assert.Equal(t, int64(2*2*4*360), st.Samples, "the first four hours, once in the tiers")
		hourly, _, err := s.RollupsOf(ctx, time.Hour, gpus[0].UUID, compactT0, compactT0.Add(24*time.Hour))
		require.NoError(t, err)
		var n int64
		for _, b := range hourly {
			n += b.Count
		}
		assert.Equal(t, int64(2*6*360), n, "every sample of the six hours")
	})
}
