package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload/workloadtest"
)

// Three hours of samples pruned to the last hour: the two older hours go (up to a chunk's
// span around the cutoff), the last hour stays whole, and the stats count what is left.
func TestPruneKeepsTheRetainedWindow(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpus := compactFleet(2)
		writeTicks(t, s, "r", gpus, 3, 0, 3*360, 30) // 3 h at 10 s, batches of 5 min
		if _, err := s.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		cutoff := compactT0.Add(2 * time.Hour)
		st, err := s.Prune(ctx, sqlstore.Cutoffs{Raw: cutoff})
		require.NoError(t, err)
		assert.Positive(t, st.Chunks)
		assert.Equal(t, int64(1), st.Batches, "the two old hours' 24 batches, folded by compaction into their window's row")

		count, oldest := 0, time.Time{}
		for _, g := range gpus {
			_, err := s.Samples(ctx, telemetry.SampleQuery{GPU: g.UUID}, func(smp telemetry.Sample) error {
				if count == 0 || smp.Time.Before(oldest) {
					oldest = smp.Time
				}
				count++
				return nil
			})
			require.NoError(t, err)
			n := 0
			_, err = s.Samples(ctx, telemetry.SampleQuery{GPU: g.UUID, Range: telemetry.TimeRange{Start: cutoff}}, func(telemetry.Sample) error { n++; return nil })
			require.NoError(t, err)
			assert.Equal(t, 360*3, n, "%s: the retained hour is whole", g.UUID)
		}
		assert.False(t, oldest.Before(cutoff.Add(-15*time.Minute)), "nothing older than a chunk's span before the cutoff: %s", oldest)
		stats, err := s.Stats(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, count, stats.TotalSamples, "the stats count what is left")

		again, err := s.Prune(ctx, sqlstore.Cutoffs{Raw: cutoff})
		require.NoError(t, err)
		assert.Zero(t, again.Chunks+again.Batches, "a second pass at the same cutoff deletes nothing")

		// Retention deleted samples before its cutoff: every one from it on is kept.
		deleted, err := s.DeletedBefore(ctx)
		require.NoError(t, err)
		assert.True(t, deleted.Equal(cutoff), "%s", deleted)
		_, err = s.Prune(ctx, sqlstore.Cutoffs{Raw: compactT0.Add(4 * time.Hour)})
		require.NoError(t, err)
		deleted, err = s.DeletedBefore(ctx)
		require.NoError(t, err)
		assert.True(t, deleted.Equal(compactT0.Add(4*time.Hour)), "every sample deleted: %s", deleted)
	})
}

// A day of live writes, an hour kept, on a simulated clock: what retention lets go goes
// within a cycle — whole partitions on PostgreSQL, their space back to the disk at once;
// freed pages given back on SQLite — and neither any table's rows nor the store's bytes
// keep growing.
func TestRetentionBoundsEveryTableAndGivesSpaceBack(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpus := compactFleet(10)
		const retention = time.Hour
		span := sqlstore.PartitionSpan(retention)
		rows := func() (chunks, batches int64) {
			var err error
			chunks, err = s.CountRows(ctx, "chunks")
			require.NoError(t, err)
			batches, err = s.CountRows(ctx, "batches")
			require.NoError(t, err)
			return chunks, batches
		}
		bytes := func() int64 {
			n, err := s.Bytes(ctx)
			require.NoError(t, err)
			return n
		}
		var peakFirst, peakLast [3]int64
		shrank := 0                // prune passes after which the store took less room
		for step := range 24 * 6 { // every 10 simulated minutes, as the pruner would
			now := compactT0.Add(time.Duration(step+1) * 10 * time.Minute)
			require.NoError(t, s.EnsurePartitions(ctx, span, now))
			writeTicks(t, s, "d", gpus, 4, step*60, 60, 30)
			_, err := s.Compact(ctx)
			require.NoError(t, err)
			cutoffs, err := s.Cutoffs(ctx, sqlstore.Retention{Raw: retention, Tiers: []time.Duration{3 * time.Hour, 48 * time.Hour}}, now)
			require.NoError(t, err)
			cutoff := cutoffs.Raw
			before := bytes()
			st, err := s.Prune(ctx, cutoffs)
			require.NoError(t, err)
			if st.Chunks > 0 && bytes() < before {
				shrank++
			}
			if !cutoff.IsZero() {
				oldest := time.Time{}
				_, err := s.Samples(ctx, telemetry.SampleQuery{GPU: gpus[0].UUID}, func(smp telemetry.Sample) error {
					oldest = smp.Time
					return errors.New("the first is enough")
				})
				require.Error(t, err)
				// A block straddling the cutoff stays whole: up to its window more is kept.
				assert.False(t, oldest.Before(cutoff.Add(-engine.BlockSpan)), "at %s, oldest %s", now, oldest)
			}
			if s.Dialect() == "postgres" {
				parts, err := s.Partitions(ctx)
				require.NoError(t, err)
				for _, p := range parts {
					assert.True(t, p[1].After(cutoff), "a partition wholly older than the cutoff is dropped: %v", p)
				}
			}
			if step%6 == 5 {
				require.NoError(t, s.Vacuum(ctx)) // autovacuum's part, in compressed time
			}
			c, b := rows()
			peak := &peakFirst
			if step >= 12*6 {
				peak = &peakLast
			}
			peak[0], peak[1], peak[2] = max(peak[0], c), max(peak[1], b), max(peak[2], bytes())
		}
		t.Logf("peaks, first and second half of the day: chunks %d, %d; batches %d, %d; bytes %d, %d",
			peakFirst[0], peakLast[0], peakFirst[1], peakLast[1], peakFirst[2], peakLast[2])
		assert.LessOrEqual(t, peakLast[0], peakFirst[0], "chunks stay bounded")
		assert.LessOrEqual(t, peakLast[1], peakFirst[1], "batches stay bounded")
		// The day's rows of 5-minute buckets grow all day, as they should: a row a GPU, a day.
		tiers, err := s.RollupBytes(ctx)
		require.NoError(t, err)
		assert.LessOrEqual(t, peakLast[2], peakFirst[2]+peakFirst[2]/10+2*tiers, "the store's bytes stay bounded")
		t.Logf("%d prune passes gave space back", shrank)
		// Space comes back a block at a time: an open window's blocks grow to MergeMaxSamples
		// (here some 40 simulated minutes of a GPU) before they can expire whole.
		assert.GreaterOrEqual(t, shrank, 8, "retention gives space back as it goes, not only stops growth")
	})
}

// An import of past days is sealed into partitions of their own, made as the compactor
// reaches them, so that retention drops each day whole when it expires, and no block lands
// in chunks_default but those of days already past the cutoff.
func TestPastDaysAreSealedIntoTheirPartitions(t *testing.T) {
	s := open(t, sqlstoretest.PostgresURL(t))
	ctx := context.Background()
	day := 24 * time.Hour
	perDay := int64(8640 * 2 * 2) // ticks of 10 s, GPUs, metrics
	writeTicks(t, s, "import", compactFleet(2), 2, 0, 3*8640, 360)
	// Samples are kept from the second day on: the first's blocks are not worth a partition.
	s.PastPartitions(day, compactT0.Add(day))
	_, err := s.Seal(ctx)
	require.NoError(t, err)

	parts, err := s.Partitions(ctx)
	require.NoError(t, err)
	assert.Equal(t, [][2]time.Time{{compactT0.Add(day), compactT0.Add(2 * day)}, {compactT0.Add(2 * day), compactT0.Add(3 * day)}}, parts)
	var inDefault, beforeFloor int64
	require.NoError(t, s.QueryRow(ctx, `SELECT coalesce(sum(samples), 0), coalesce(sum(samples) FILTER (WHERE max_ts < $1), 0) FROM chunks_default`,
		compactT0.Add(day)).Scan(&inDefault, &beforeFloor))
	assert.Equal(t, perDay, inDefault, "the first day's blocks, and only they, are in chunks_default")
	assert.Equal(t, inDefault, beforeFloor)

	st, err := s.Prune(ctx, sqlstore.Cutoffs{Raw: compactT0.Add(2 * day)})
	require.NoError(t, err)
	assert.Equal(t, 2*perDay, st.Samples, "two days expire")
	parts, err = s.Partitions(ctx)
	require.NoError(t, err)
	assert.Equal(t, [][2]time.Time{{compactT0.Add(2 * day), compactT0.Add(3 * day)}}, parts, "the second day's partition is dropped whole")
	stats, err := s.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, perDay, stats.TotalSamples, "the last day is kept")
}

// Retention counts back from the newest sample, never from later than now.
func TestCutoffFollowsTheNewestSample(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		now := time.Now()
		empty, err := s.Cutoff(ctx, time.Hour, now)
		require.NoError(t, err)
		assert.True(t, empty.IsZero(), "an empty store has no cutoff: the first batches of an old file stay")

		writeTicks(t, s, "old", compactFleet(1), 1, 0, 10, 10) // 2025-07-01, last at 00:01:30
		old, err := s.Cutoff(ctx, time.Hour, now)
		require.NoError(t, err)
		assert.True(t, old.Equal(compactT0.Add(90*time.Second-time.Hour)), "an import of old data is kept: %s", old)

		future := telemetry.Batch{ID: "future", GPUs: compactFleet(1), Samples: []telemetry.Sample{
			{GPU: "GPU-c-0", Metric: "DCGM_FI_TEST_00", Time: now.Add(100 * 24 * time.Hour), Value: 1}}}
		_, err = s.WriteBatch(ctx, future)
		require.NoError(t, err)
		capped, err := s.Cutoff(ctx, time.Hour, now)
		require.NoError(t, err)
		assert.True(t, capped.Equal(now.Add(-time.Hour)), "a sample from the future moves it no further than now: %s", capped)
	})
}

// A pod that ran three days a month ago is still reported, by its workload record, after
// retention deleted its samples; and samples wait for the recorder, however far behind.
func TestWorkloadRecordsOutliveTheSamples(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpu := telemetry.GPU{UUID: "GPU-month", Hostname: "node-m", ModelName: "NVIDIA H100 80GB HBM3"}
		day := 24 * time.Hour
		writeMinutes := func(id string, from, to time.Duration, pod string) {
			for b := from; b < to; b += 6 * time.Hour {
				batch := telemetry.Batch{ID: fmt.Sprint(id, b), GPUs: []telemetry.GPU{gpu}}
				for at := b; at < min(b+6*time.Hour, to); at += time.Minute {
					batch.Samples = append(batch.Samples,
						telemetry.Sample{GPU: gpu.UUID, Metric: "DCGM_FI_DEV_GPU_UTIL", Time: compactT0.Add(at), Value: 80, Namespace: "research", Pod: pod},
						telemetry.Sample{GPU: gpu.UUID, Metric: "DCGM_FI_DEV_POWER_USAGE", Time: compactT0.Add(at), Value: 500, Namespace: "research", Pod: pod},
						telemetry.Sample{GPU: gpu.UUID, Metric: "DCGM_FI_PROF_SM_ACTIVE", Time: compactT0.Add(at), Value: 0.004, Namespace: "research", Pod: pod},
						telemetry.Sample{GPU: gpu.UUID, Metric: "DCGM_FI_PROF_NVLINK_TX_BYTES", Time: compactT0.Add(at), Value: 45e9, Namespace: "research", Pod: pod})
				}
				_, err := s.WriteBatch(ctx, batch)
				require.NoError(t, err)
			}
		}
		writeMinutes("old", 0, 3*day, "three-day-job")
		writeMinutes("new", 30*day, 31*day, "today-job")
		_, err := s.Seal(ctx)
		require.NoError(t, err)
		now := compactT0.Add(31 * day)
		retention := sqlstore.Retention{Raw: 15 * day, Workloads: 2 * 365 * day, Recorded: true}

		rec := workload.NewRecorder(query.NewFleet(s, s), s, s, workload.Config{Step: 10 * day}, slog.New(slog.DiscardHandler))
		_, err = rec.Record(ctx, now) // the recorder's first look: nothing has settled yet
		require.NoError(t, err)
		now = now.Add(day)
		p, err := rec.Record(ctx, now)
		require.NoError(t, err)
		require.True(t, p.More)
		behind, err := s.Cutoffs(ctx, retention, now)
		require.NoError(t, err)
		state, _, err := s.OpenWorkloads(ctx)
		require.NoError(t, err)
		require.True(t, state.Through.Before(compactT0.Add(15*day)), "the recorder is behind the cutoff: %s", state.Through)
		assert.True(t, behind.Raw.Equal(state.Through.Add(-sqlstore.RecorderKeeps)), "samples wait for the recorder: cut at %s", behind.Raw)
		retention.Recorded = false
		unrecorded, err := s.Cutoffs(ctx, retention, now)
		require.NoError(t, err)
		assert.True(t, unrecorded.Raw.After(behind.Raw), "without a recorder, samples wait for none")
		retention.Recorded = true
		for p.More {
			now = now.Add(day)
			p, err = rec.Record(ctx, now)
			require.NoError(t, err)
		}
		cutoffs, err := s.Cutoffs(ctx, retention, now)
		require.NoError(t, err)
		assert.True(t, cutoffs.Raw.Equal(compactT0.Add(31*day-time.Minute-15*day)), "caught up, retention cuts as configured: %s", cutoffs.Raw)
		month := telemetry.UsageQuery{Range: telemetry.TimeRange{Start: compactT0, End: now}, By: telemetry.GroupPod}
		before, err := query.NewFleet(s, s).Usage(ctx, month)
		require.NoError(t, err)
		st, err := s.Prune(ctx, cutoffs)
		require.NoError(t, err)
		assert.Positive(t, st.Samples)

		// The month's usage report, its first half's samples gone, sums the recorded hours:
		// the same answer as before.
		fleet := query.NewFleet(s, s).WithTiers(s).WithRecords(s)
		after, err := fleet.Usage(ctx, month)
		require.NoError(t, err)
		assert.Empty(t, after.Warnings)
		require.Len(t, after.Groups, 2)
		for i, u := range before.Groups {
			assert.Equal(t, u.Group, after.Groups[i].Group)
			assert.InDelta(t, u.GPUHours, after.Groups[i].GPUHours, 1e-9, u.Group)
			assert.InDelta(t, u.EnergyKWh, after.Groups[i].EnergyKWh, 1e-9, u.Group)
			assert.Equal(t, u.Class, after.Groups[i].Class, u.Group)
			assert.InDelta(t, u.Profiling[usage.NVLinkTxField].Mean, after.Groups[i].Profiling[usage.NVLinkTxField].Mean, 1e-9, u.Group)
		}
		assert.InDelta(t, 72, after.Groups[0].GPUHours, 1e-9, "research/three-day-job")
		// Its efficiency too: SMs busy 0.4 % of the time, NVLink at 45 of an H100's 450 GB/s.
		assert.Equal(t, usage.ClassHeldNoKernels, after.Groups[0].Class)
		assert.InDelta(t, 0.004, after.Groups[0].Profiling[usage.SMField].Mean, 1e-12)
		assert.InDelta(t, 0.1, after.Groups[0].Profiling[usage.NVLinkTxField].Mean, 1e-12)
		assert.InDelta(t, 72, after.Groups[0].Profiling[usage.NVLinkTxField].Hours, 1e-9)
		// A start inside an hour whose samples are gone: the hour counts whole, and the
		// answer says so.
		month.Range.Start = compactT0.Add(30 * time.Minute)
		cut, err := fleet.Usage(ctx, month)
		require.NoError(t, err)
		require.Len(t, cut.Warnings, 1)
		assert.Contains(t, cut.Warnings[0], "counted from "+compactT0.Format(time.RFC3339))
		assert.InDelta(t, 72, cut.Groups[0].GPUHours, 1e-9)

		n := 0
		_, err = s.Samples(ctx, telemetry.SampleQuery{GPU: gpu.UUID, Range: telemetry.TimeRange{Start: compactT0, End: compactT0.Add(3 * day)}},
			func(telemetry.Sample) error { n++; return nil })
		require.NoError(t, err)
		assert.Zero(t, n, "the job's samples are gone")
		records, _, err := s.Workloads(ctx, telemetry.WorkloadQuery{Pod: "three-day-job", Limit: 10})
		require.NoError(t, err)
		require.Len(t, records, 1, "its record stays")
		assert.False(t, records[0].Open)
		assert.InDelta(t, 72, records[0].GPUHours, 1e-9)
		assert.InDelta(t, 80, records[0].MeanUtil, 1e-9)
		assert.InDelta(t, 0.5*72, records[0].EnergyKWh, 1e-9)

		// The hourly sums go with the 5-minute tier: a window starting in a day whose hours
		// are gone counts from the start of that day, and says so; its days stay.
		_, err = s.Prune(ctx, sqlstore.Cutoffs{Tiers: []time.Time{compactT0.Add(20 * day)}})
		require.NoError(t, err)
		month.Range.Start = compactT0.Add(2*time.Hour + 30*time.Minute)
		daily, err := fleet.Usage(ctx, month)
		require.NoError(t, err)
		require.Len(t, daily.Warnings, 1)
		assert.Contains(t, daily.Warnings[0], "hourly usage sums")
		assert.InDelta(t, 72, daily.Groups[0].GPUHours, 1e-9, "the whole first day")
		month.Range.Start = compactT0.Add(30 * day)
		recent, err := fleet.Usage(ctx, month)
		require.NoError(t, err)
		assert.Empty(t, recent.Warnings, "hours kept")

		// The records' own retention deletes closed records older than it.
		st, err = s.Prune(ctx, sqlstore.Cutoffs{Workloads: compactT0.Add(10 * day)})
		require.NoError(t, err)
		assert.EqualValues(t, 1, st.Workloads)
		open, _, err := s.Workloads(ctx, telemetry.WorkloadQuery{Limit: 10})
		require.NoError(t, err)
		require.Len(t, open, 1)
		assert.Equal(t, "today-job", open[0].Pod)
	})
}

// One recorder at a time on PostgreSQL: a second process skips its pass while the lock is
// held, and takes it once released.
func TestOneRecorderAtATime(t *testing.T) {
	url := sqlstoretest.PostgresURL(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()
	unlock, mine, err := a.LockRecorder(ctx)
	require.NoError(t, err)
	require.True(t, mine)
	_, mine, err = b.LockRecorder(ctx)
	require.NoError(t, err)
	assert.False(t, mine, "held by the other")
	unlock()
	unlockB, mine, err := b.LockRecorder(ctx)
	require.NoError(t, err)
	assert.True(t, mine, "released")
	unlockB()
}

// Samples that arrive late for hours whose other samples retention has deleted — a
// collector back after a day, its backlog still queued — are not counted again into those
// hours: computing them again from what is kept would lose every other device's usage there.
// And a short window whose samples are gone is answered from the recorded hours.
func TestLateSamplesBeforeTheCutoffLoseNoUsage(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		kept := telemetry.GPU{UUID: "GPU-kept", Hostname: "node-k", ModelName: "NVIDIA H100 80GB HBM3"}
		late := telemetry.GPU{UUID: "GPU-late", Hostname: "node-l", ModelName: "NVIDIA H100 80GB HBM3"}
		write := func(id string, g telemetry.GPU, from, to time.Duration, pod string) {
			batch := telemetry.Batch{ID: id, GPUs: []telemetry.GPU{g}}
			for at := from; at < to; at += time.Minute {
				batch.Samples = append(batch.Samples,
					telemetry.Sample{GPU: g.UUID, Metric: "DCGM_FI_DEV_GPU_UTIL", Time: compactT0.Add(at), Value: 80, Namespace: "ml", Pod: pod})
			}
			_, err := s.WriteBatch(ctx, batch)
			require.NoError(t, err)
		}
		write("kept", kept, 0, 6*time.Hour, "kept-job")
		_, err := s.Seal(ctx)
		require.NoError(t, err)
		rec := workload.NewRecorder(query.NewFleet(s, s), s, s, workload.Config{}, slog.New(slog.DiscardHandler))
		now := compactT0.Add(6 * time.Hour)
		workloadtest.RecordAll(t, rec, now)
		hours := telemetry.UsageQuery{Range: telemetry.TimeRange{Start: compactT0, End: compactT0.Add(6 * time.Hour)}, By: telemetry.GroupPod}
		fleet := query.NewFleet(s, s).WithTiers(s).WithRecords(s)
		before, err := fleet.Usage(ctx, hours)
		require.NoError(t, err)
		require.Len(t, before.Groups, 1)
		require.InDelta(t, 6, before.Groups[0].GPUHours, 1e-9)

		st, err := s.Prune(ctx, sqlstore.Cutoffs{Raw: compactT0.Add(3 * time.Hour)})
		require.NoError(t, err)
		require.Positive(t, st.Samples)
		// A window shorter than the samples are read for, its samples gone, is summed from the
		// recorded hours as a long one is.
		short, err := fleet.Usage(ctx, telemetry.UsageQuery{Range: telemetry.TimeRange{Start: compactT0, End: compactT0.Add(2 * time.Hour)}, By: telemetry.GroupPod})
		require.NoError(t, err)
		require.Len(t, short.Groups, 1)
		assert.InDelta(t, 2, short.Groups[0].GPUHours, 1e-9, "two hours whose samples are gone")
		assert.Empty(t, short.Warnings)
		write("late", late, 30*time.Minute, 90*time.Minute, "late-job") // its first hours' samples are gone
		workloadtest.RecordAll(t, rec, now.Add(time.Hour))

		after, err := fleet.Usage(ctx, hours)
		require.NoError(t, err)
		got := map[string]float64{}
		for _, u := range after.Groups {
			got[u.Group] = u.GPUHours
		}
		assert.InDelta(t, 6, got["ml/kept-job"], 1e-9, "the hours recorded before their samples went keep their sums: %v", got)
	})
}
