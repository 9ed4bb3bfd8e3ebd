package portstest

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// SummaryStore is a store with downsampled tiers under test.
type SummaryStore interface {
	Store
	ports.SummaryReader
}

// TestSummaryReader runs the contract of ports.SummaryReader: over any window, an
// aggregation read from the tiers equals the one read from the samples, before settle (the
// adapter's own housekeeping: compaction, say) has run, after it, and after late samples
// arrive. newStore returns an empty store private to the calling test.
func TestSummaryReader(t *testing.T, newStore func(t *testing.T) SummaryStore, settle func(t *testing.T, s SummaryStore)) {
	ctx := context.Background()
	s := newStore(t)
	sliced := telemetry.GPU{UUID: "GPU-tiers-1", Hostname: "host-t", Device: "nvidia0", ModelName: "H100"}
	whole := telemetry.GPU{UUID: "GPU-tiers-2", Hostname: "host-t", Index: 1, Device: "nvidia1", ModelName: "H100"}
	base := time.Date(2025, 7, 18, 0, 0, 0, 0, time.UTC)
	writeHours := func(id string, from, to int, shift time.Duration) {
		for b := from; b < to; b += 30 { // batches of five minutes
			batch := telemetry.Batch{ID: fmt.Sprintf("%s-%d", id, b), GPUs: []telemetry.GPU{sliced, whole}}
			for i := b; i < min(b+30, to); i++ {
				at := base.Add(time.Duration(i)*10*time.Second + shift)
				batch.Samples = append(batch.Samples,
					telemetry.Sample{GPU: whole.UUID, Metric: "DCGM_FI_DEV_GPU_UTIL", Time: at, Value: float64(i * 7 % 101)},
					telemetry.Sample{GPU: whole.UUID, Metric: "DCGM_FI_DEV_POWER_USAGE", Time: at, Value: float64(i*37%40000) / 100},
					telemetry.Sample{GPU: sliced.UUID, Metric: "DCGM_FI_DEV_GPU_UTIL", Time: at, Value: float64(i % 13), Pod: fmt.Sprint("pod-", i/200%2), Namespace: "ml"},
					telemetry.Sample{GPU: sliced.UUID, Metric: "DCGM_FI_DEV_GPU_UTIL", Time: at, Value: float64(i % 17), Pod: "pod-x", Namespace: "ml"})
			}
			write(t, s, batch)
		}
	}
	writeHours("a", 0, 6*360, 0) // six hours at 10 s
	svc := query.New(s, s, s, s).WithTiers(s)
	check := func(t *testing.T, when string) {
		windows := []telemetry.TimeRange{
			{Start: base, End: base.Add(6*time.Hour - time.Microsecond)},                                    // whole hours
			{Start: base.Add(7*time.Minute + 3*time.Second), End: base.Add(5*time.Hour + 31*time.Minute)},   // cut buckets
			{Start: base.Add(-24 * time.Hour), End: base.Add(48 * time.Hour)},                               // beyond the samples
			{Start: base.Add(2 * time.Hour), End: base.Add(2*time.Hour + 5*time.Minute - time.Microsecond)}, // one bucket
		}
		for _, gpu := range []string{whole.UUID, sliced.UUID} {
			for _, step := range []time.Duration{5 * time.Minute, time.Hour, 2 * time.Hour} {
				for i, w := range windows {
					aggs := telemetry.Aggregations
					if i > 0 { // every aggregation once; over the other windows, the ones that differ most
						aggs = []telemetry.Aggregation{telemetry.AggAvg, telemetry.AggLast}
					}
					for _, agg := range aggs {
						q := telemetry.AggregateQuery{GPU: gpu, Range: w, Step: step, Agg: agg}
						tiered, err := svc.Aggregate(ctx, q)
						require.NoError(t, err)
						q.MaxResolution = telemetry.RawResolution
						raw, err := svc.Aggregate(ctx, q)
						require.NoError(t, err)
						name := fmt.Sprintf("%s: %s, step %s, %s..%s, %s", when, gpu, step, w.Start.Format(time.TimeOnly), w.End.Format(time.TimeOnly), agg)
						assert.Zero(t, raw.Resolution, name)
						assert.Positive(t, tiered.Resolution, name)
						require.Len(t, tiered.Buckets, len(raw.Buckets), name)
						for i, b := range raw.Buckets {
							got := tiered.Buckets[i]
							assert.True(t, b.Start.Equal(got.Start) && b.Metric == got.Metric && b.Count == got.Count, "%s: %+v, %+v", name, b, got)
							assert.InDelta(t, b.Value, got.Value, 1e-9*math.Abs(b.Value), "%s: %+v", name, b)
						}
					}
				}
			}
		}
	}
	// A store that merely starts later has deleted nothing: windows reaching back before
	// its first sample hold no gap to warn of (retention's is the adapter's own test).
	deleted, err := s.DeletedBefore(ctx)
	require.NoError(t, err)
	assert.True(t, deleted.IsZero(), "nothing deleted: %s", deleted)
	for _, step := range []time.Duration{time.Minute, time.Hour} {
		res, err := svc.Aggregate(ctx, telemetry.AggregateQuery{GPU: whole.UUID, Step: step, Agg: telemetry.AggAvg,
			Range: telemetry.TimeRange{Start: base.Add(-90*time.Minute + 7*time.Second), End: base.Add(3 * time.Hour)}})
		require.NoError(t, err)
		assert.Empty(t, res.Warnings, "step %s", step)
	}

	// The fleet's top and latest lists over a day or more read the coarsest tier.
	fleetTiered, fleetRaw := query.NewFleet(s, s).WithTiers(s), query.NewFleet(s, s)
	checkFleet := func(t *testing.T, when string) {
		for _, w := range []telemetry.TimeRange{
			{Start: base.Add(-24 * time.Hour), End: base.Add(48 * time.Hour)},
			{Start: base.Add(-20*time.Hour + 7*time.Minute + 3*time.Second), End: base.Add(5*time.Hour + 31*time.Minute)},
		} {
			q := telemetry.FleetQuery{Metric: "DCGM_FI_DEV_GPU_UTIL", Range: w}
			for _, agg := range telemetry.Aggregations {
				got, err := fleetTiered.Top(ctx, q, agg, 5, false)
				require.NoError(t, err)
				want, err := fleetRaw.Top(ctx, q, agg, 5, false)
				require.NoError(t, err)
				require.Len(t, got, len(want), "%s: top %s", when, agg)
				require.Len(t, want, 2)
				for i := range want {
					name := fmt.Sprintf("%s: top %s, %d", when, agg, i)
					assert.Equal(t, want[i].Key(), got[i].Key(), name)
					assert.InDelta(t, want[i].Value, got[i].Value, 1e-9*math.Abs(want[i].Value), name)
					assert.Equal(t, want[i].Samples, got[i].Samples, name)
					assert.True(t, want[i].Time.Equal(got[i].Time), "%s: %s, %s", name, want[i].Time, got[i].Time)
				}
			}
			// Aggregates: count, avg, min and max as the samples give them; the percentiles
			// of the buckets' means, within the samples' range; raw when asked.
			for _, by := range []telemetry.Grouping{telemetry.GroupHost, telemetry.GroupPod, telemetry.GroupGPU} {
				got, err := fleetTiered.Aggregate(ctx, q, by)
				require.NoError(t, err)
				want, err := fleetRaw.Aggregate(ctx, q, by)
				require.NoError(t, err)
				assert.Equal(t, time.Hour, got.Resolution, "%s: aggregate by %s", when, by)
				assert.Zero(t, want.Resolution)
				require.Len(t, got.Groups, len(want.Groups), "%s: aggregate by %s", when, by)
				for i, w := range want.Groups {
					g, name := got.Groups[i], fmt.Sprintf("%s: aggregate by %s, %q", when, by, w.Group)
					assert.Equal(t, w.Group, g.Group, name)
					assert.Equal(t, w.Devices, g.Devices, name)
					assert.Equal(t, w.Samples, g.Samples, name)
					assert.InDelta(t, w.Avg, g.Avg, 1e-9*math.Abs(w.Avg), name)
					assert.Equal(t, w.Min, g.Min, name)
					assert.Equal(t, w.Max, g.Max, name)
					for _, p := range []float64{g.P50, g.P95, g.P99} {
						assert.True(t, p >= g.Min && p <= g.Max, "%s: percentile %g outside [%g, %g]", name, p, g.Min, g.Max)
					}
				}
				q.MaxResolution = telemetry.RawResolution
				forced, err := fleetTiered.Aggregate(ctx, q, by)
				q.MaxResolution = telemetry.AnyResolution
				require.NoError(t, err)
				assert.Equal(t, want, forced, "%s: aggregate by %s, max_source_resolution=raw", when, by)
			}
			got, _, err := fleetTiered.Latest(ctx, q, 10, "")
			require.NoError(t, err)
			want, _, err := fleetRaw.Latest(ctx, q, 10, "")
			require.NoError(t, err)
			assert.Equal(t, want, got, "%s: latest", when)
		}
	}
	check(t, "as written")
	checkFleet(t, "as written")
	settle(t, s)
	checkFleet(t, "settled")
	check(t, "settled")
	writeHours("late", 30, 90, 3*time.Second) // into the first window, after it was settled
	check(t, "late samples")
	settle(t, s)
	check(t, "late samples settled")
	// Late samples of one device only: read together, the devices' windows differ, one
	// answered from the tier and the other's from its samples.
	late := telemetry.Batch{ID: "late-one", GPUs: []telemetry.GPU{whole}}
	for i := 5 * 360; i < 5*360+20; i++ {
		late.Samples = append(late.Samples, telemetry.Sample{GPU: whole.UUID, Metric: "DCGM_FI_DEV_GPU_UTIL",
			Time: base.Add(time.Duration(i)*10*time.Second + 7*time.Second), Value: float64(i % 89)})
	}
	write(t, s, late)
	checkFleet(t, "late samples of one device")
	check(t, "late samples of one device")
}
