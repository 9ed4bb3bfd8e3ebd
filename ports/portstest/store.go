package portstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// Store is a store under test.
type Store interface {
	ports.BatchWriter
	ports.Inventory
	ports.SampleReader
	ports.SeriesReader
	ports.Summarizer
}

// TestStore runs the contract of the store ports. newStore returns an empty store private
// to the calling test.
func TestStore(t *testing.T, newStore func(t *testing.T) Store) {
	t.Run("StoresAndReadsBack", func(t *testing.T) { storesAndReadsBack(t, newStore(t)) })
	t.Run("RedeliveredBatchStoresNothing", func(t *testing.T) { redeliveredBatch(t, newStore(t)) })
	t.Run("ConcurrentDuplicatesStoreOnce", func(t *testing.T) { concurrentDuplicates(t, newStore(t)) })
	t.Run("BatchesWrittenTogetherStoreEachOnce", func(t *testing.T) { batchesTogether(t, newStore(t)) })
	t.Run("TextItCannotKeepIsRefused", func(t *testing.T) { badText(t, newStore(t)) })
	t.Run("TimeWindowIsInclusive", func(t *testing.T) { timeWindow(t, newStore(t)) })
	t.Run("Paging", func(t *testing.T) { paging(t, newStore(t)) })
	t.Run("UnknownGPU", func(t *testing.T) { unknownGPU(t, newStore(t)) })
	t.Run("GPUMetadataFollowsLatestBatch", func(t *testing.T) { gpuMetadata(t, newStore(t)) })
	t.Run("ConcurrentWritersOfSharedGPUs", func(t *testing.T) { concurrentWriters(t, newStore(t)) })
	t.Run("Inventory", func(t *testing.T) { inventory(t, newStore(t)) })
	t.Run("InventoryPagesByKey", func(t *testing.T) { inventoryPages(t, newStore(t)) })
	t.Run("ThousandsOfGPUsInOneWrite", func(t *testing.T) { manyGPUs(t, newStore(t)) })
	t.Run("EachSampleOnceAcrossBatches", func(t *testing.T) { eachSampleOnce(t, newStore(t)) })
	t.Run("MetricFilterAndOrder", func(t *testing.T) { metricFilterAndOrder(t, newStore(t)) })
	t.Run("CursorPagingWhileDataArrives", func(t *testing.T) { cursorPaging(t, newStore(t)) })
	t.Run("StreamsTheWholeWindowWithoutLimit", func(t *testing.T) { streamsWholeWindow(t, newStore(t)) })
	t.Run("Latest", func(t *testing.T) { latest(t, newStore(t)) })
	t.Run("Aggregate", func(t *testing.T) { aggregates(t, newStore(t)) })
	t.Run("AggregateListsMetricsByName", func(t *testing.T) { aggregateByName(t, newStore(t)) })
	t.Run("InterleavedBatchesReadInOrder", func(t *testing.T) { interleaved(t, newStore(t)) })
	t.Run("MIGInstancesAreDevicesOfTheirOwn", func(t *testing.T) { migInstances(t, newStore(t)) })
	t.Run("SeriesAreTheSamplesOfManyDevices", func(t *testing.T) { seriesOfManyDevices(t, newStore(t)) })
	t.Run("TimeSlicedGPUKeepsEveryPod", func(t *testing.T) { timeSliced(t, newStore(t)) })
}

var t0 = time.Date(2025, 7, 18, 20, 42, 34, 0, time.UTC)

// fleetBatch returns a batch with one sample of each metric for each GPU at time at.
func fleetBatch(id string, at time.Time, gpus []telemetry.GPU, metrics ...string) telemetry.Batch {
	b := telemetry.Batch{ID: id, GPUs: gpus}
	for gi, g := range gpus {
		for mi, m := range metrics {
			b.Samples = append(b.Samples, telemetry.Sample{GPU: g.UUID, Metric: m, Time: at, Value: float64(gi*100 + mi)})
		}
	}
	return b
}

func fleet(hosts, perHost int) []telemetry.GPU {
	var gpus []telemetry.GPU
	for h := range hosts {
		for i := range perHost {
			gpus = append(gpus, telemetry.GPU{
				UUID: fmt.Sprintf("GPU-%02d-%d", h, i), Hostname: fmt.Sprintf("host-%02d", h), Index: i,
				Device: fmt.Sprintf("nvidia%d", i), ModelName: "NVIDIA H100 80GB HBM3", DriverVersion: "535.129.03",
			})
		}
	}
	return gpus
}

func storedOf(written []telemetry.Written) []bool {
	out := make([]bool, len(written))
	for i, w := range written {
		out[i] = w.Stored
	}
	return out
}

func write(t *testing.T, s ports.BatchWriter, b telemetry.Batch) bool {
	t.Helper()
	stored, err := s.WriteBatch(context.Background(), b)
	require.NoError(t, err)
	return stored
}

// ReadPage collects what r.Samples calls back with: a page's samples (every sample when
// q.Page.Limit is 0) and the cursor of the page after.
func ReadPage(ctx context.Context, r ports.SampleReader, q telemetry.SampleQuery) ([]telemetry.Sample, string, error) {
	var page []telemetry.Sample
	next, err := r.Samples(ctx, q, func(smp telemetry.Sample) error {
		page = append(page, smp)
		return nil
	})
	return page, next, err
}

func samples(t *testing.T, s ports.SampleReader, q telemetry.SampleQuery) []telemetry.Sample {
	t.Helper()
	if q.Page.Limit == 0 {
		q.Page.Limit = 1000
	}
	got, _, err := ReadPage(context.Background(), s, q)
	require.NoError(t, err)
	return got
}

func stats(t *testing.T, s ports.Summarizer) telemetry.Stats {
	t.Helper()
	st, err := s.Stats(context.Background())
	require.NoError(t, err)
	return st
}

func storesAndReadsBack(t *testing.T, s Store) {
	ctx := context.Background()
	empty := stats(t, s)
	assert.Equal(t, telemetry.Stats{}, empty)
	none, err := s.GPUs(ctx, telemetry.GPUFilter{})
	require.NoError(t, err)
	assert.NotNil(t, none)
	assert.Empty(t, none)

	gpus := fleet(3, 2)
	b := fleetBatch("b1", t0.Add(123456*time.Microsecond), gpus, "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE")
	b.Samples[0].Container, b.Samples[0].Pod, b.Samples[0].Namespace = "trainer", "job-7", "ml"
	b.Samples[1].Value = -12.25
	require.True(t, write(t, s, b))

	got, err := s.GPUs(ctx, telemetry.GPUFilter{})
	require.NoError(t, err)
	require.Len(t, got, len(gpus))
	for i := range gpus {
		assert.Equal(t, gpus[i], got[i].GPU, "GPUs ordered by hostname, then index")
	}
	st := stats(t, s)
	assert.True(t, st.Oldest.Equal(b.Samples[0].Time) && st.Newest.Equal(b.Samples[0].Time), "%+v", st)
	st.Oldest, st.Newest = time.Time{}, time.Time{}
	assert.Equal(t, telemetry.Stats{TotalSamples: 12, UniqueGPUs: 6, UniqueHosts: 3}, st)

	read := samples(t, s, telemetry.SampleQuery{GPU: gpus[0].UUID})
	require.Len(t, read, 2)
	for i := range read {
		assert.True(t, b.Samples[i].Time.Equal(read[i].Time), "microsecond times survive")
		read[i].Time = b.Samples[i].Time
	}
	assert.Equal(t, b.Samples[:2], read)
}

func redeliveredBatch(t *testing.T, s Store) {
	gpus := fleet(2, 2)
	b := fleetBatch("once", t0, gpus, "M1", "M2", "M3")
	require.True(t, write(t, s, b))
	before := stats(t, s)
	for range 3 {
		assert.False(t, write(t, s, b), "a redelivered batch is recognised")
	}
	assert.Equal(t, before, stats(t, s))

	assert.Len(t, samples(t, s, telemetry.SampleQuery{GPU: gpus[0].UUID}), 3)

	// The same samples under another batch ID are another batch, whose samples are all
	// stored already.
	b.ID = "twice"
	assert.True(t, write(t, s, b))
	assert.Len(t, samples(t, s, telemetry.SampleQuery{GPU: gpus[0].UUID}), 3)
	assert.Equal(t, before, stats(t, s))
}

func concurrentDuplicates(t *testing.T, s Store) {
	b := fleetBatch("raced", t0, fleet(4, 2), "M1", "M2")
	var wg sync.WaitGroup
	var mu sync.Mutex
	storedCount := 0
	for range 6 {
		wg.Go(func() {
			stored, err := s.WriteBatch(context.Background(), b)
			assert.NoError(t, err)
			if stored {
				mu.Lock()
				storedCount++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, storedCount)
	assert.EqualValues(t, 16, stats(t, s).TotalSamples)
	assert.Len(t, samples(t, s, telemetry.SampleQuery{GPU: b.GPUs[0].UUID}), 2)
}

func batchesTogether(t *testing.T, s Store) {
	gpus := fleet(3, 2)
	old := fleetBatch("old", t0, gpus, "M1")
	require.True(t, write(t, s, old))
	group := []telemetry.Batch{
		fleetBatch("a", t0.Add(time.Second), gpus[:4], "M1", "M2"),
		old, // stored before: nothing
		fleetBatch("b", t0.Add(2*time.Second), gpus[2:], "M1"),
		fleetBatch("a", t0.Add(time.Second), gpus[:4], "M1", "M2"), // the same again: nothing
		{ID: "empty"},
	}
	stored, err := s.WriteBatches(context.Background(), group)
	require.NoError(t, err)
	assert.Equal(t, []bool{true, false, true, false, true}, storedOf(stored))
	assert.EqualValues(t, 6+8+4, stats(t, s).TotalSamples)
	got := samples(t, s, telemetry.SampleQuery{GPU: gpus[2].UUID})
	require.Len(t, got, 1+2+1, "a GPU's samples from both new batches, in time order")
	for i, at := range []time.Time{t0, t0.Add(time.Second), t0.Add(time.Second), t0.Add(2 * time.Second)} {
		assert.True(t, got[i].Time.Equal(at), "sample %d at %s", i, got[i].Time)
	}
	stored, err = s.WriteBatches(context.Background(), group)
	require.NoError(t, err)
	assert.Equal(t, []bool{false, false, false, false, false}, storedOf(stored), "written again: nothing")
	assert.EqualValues(t, 18, stats(t, s).TotalSamples)
	_, err = s.WriteBatches(context.Background(), []telemetry.Batch{fleetBatch("c", t0, gpus, "M1"), {}})
	assert.ErrorIs(t, err, telemetry.ErrInvalid, "a batch without an ID")
	assert.EqualValues(t, 18, stats(t, s).TotalSamples, "nothing of the call stored")
}

func badText(t *testing.T, s Store) {
	gpus := fleet(1, 2)
	good := fleetBatch("good", t0, gpus, "M1")
	bad := map[string]telemetry.Batch{}
	nul := fleetBatch("nul", t0, gpus, "M1")
	nul.GPUs = []telemetry.GPU{gpus[0], gpus[1]}
	nul.GPUs[1].Hostname = "host\x00"
	bad["NUL in a hostname"] = nul
	utf := fleetBatch("utf8", t0, gpus, "M\xff")
	bad["invalid UTF-8 in a metric name"] = utf
	long := fleetBatch("long", t0, gpus, "M1")
	long.GPUs = []telemetry.GPU{gpus[0], gpus[1]}
	long.GPUs[0].Labels = map[string]string{"note": strings.Repeat("x", telemetry.MaxTextLen+1)}
	bad["an over-long label"] = long
	ctl := fleetBatch("ctl", t0, gpus, "M1")
	ctl.Samples[0].Pod = "pod\n"
	bad["a control character in a pod"] = ctl
	for name, b := range bad {
		_, err := s.WriteBatch(context.Background(), b)
		assert.ErrorIs(t, err, telemetry.ErrInvalid, name)
		_, err = s.WriteBatches(context.Background(), []telemetry.Batch{good, b})
		assert.ErrorIs(t, err, telemetry.ErrInvalid, "%s, written with another", name)
	}
	assert.EqualValues(t, 0, stats(t, s).TotalSamples, "nothing of a refused write stored")
	gs, err := s.GPUs(context.Background(), telemetry.GPUFilter{})
	require.NoError(t, err)
	assert.Empty(t, gs, "no device of a refused write registered")
	assert.True(t, write(t, s, good), "the same store takes good text")
}

func timeWindow(t *testing.T, s Store) {
	gpus := fleet(1, 1)
	times := []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second), t0.Add(3 * time.Second)}
	for i, at := range times {
		write(t, s, fleetBatch(fmt.Sprintf("w%d", i), at, gpus, "B", "A"))
	}
	uuid := gpus[0].UUID
	all := samples(t, s, telemetry.SampleQuery{GPU: uuid})
	require.Len(t, all, 8)
	for i, smp := range all {
		assert.True(t, smp.Time.Equal(times[i/2]), "ordered by time")
		assert.Equal(t, all[i%2].Metric, smp.Metric, "then in one fixed metric order")
	}
	for i, at := range times {
		exact := samples(t, s, telemetry.SampleQuery{GPU: uuid, Range: telemetry.TimeRange{Start: at, End: at}})
		assert.Len(t, exact, 2, "window [t%d, t%d] holds exactly its samples", i, i)
		from := samples(t, s, telemetry.SampleQuery{GPU: uuid, Range: telemetry.TimeRange{Start: at}})
		assert.Len(t, from, 2*(len(times)-i), "open end from t%d", i)
		until := samples(t, s, telemetry.SampleQuery{GPU: uuid, Range: telemetry.TimeRange{End: at}})
		assert.Len(t, until, 2*(i+1), "open start until t%d", i)
	}
	between := samples(t, s, telemetry.SampleQuery{GPU: uuid, Range: telemetry.TimeRange{
		Start: t0.Add(500 * time.Millisecond), End: t0.Add(2500 * time.Millisecond)}})
	assert.Len(t, between, 4)
	// Times in another zone mean the same instants.
	east := time.FixedZone("UTC+2", 2*3600)
	zoned := samples(t, s, telemetry.SampleQuery{GPU: uuid, Range: telemetry.TimeRange{Start: t0.In(east), End: t0.In(east)}})
	assert.Len(t, zoned, 2)
}

func paging(t *testing.T, s Store) {
	gpus := fleet(1, 1)
	for i := range 5 {
		write(t, s, fleetBatch(fmt.Sprintf("p%d", i), t0.Add(time.Duration(i)*time.Second), gpus, "M"))
	}
	uuid := gpus[0].UUID
	var seen []float64
	for offset := 0; offset < 5; offset += 2 {
		page := samples(t, s, telemetry.SampleQuery{GPU: uuid, Page: telemetry.Page{Limit: 2, Offset: offset}})
		for _, smp := range page {
			seen = append(seen, float64(smp.Time.Sub(t0)/time.Second))
		}
	}
	assert.Equal(t, []float64{0, 1, 2, 3, 4}, seen)
	assert.Empty(t, samples(t, s, telemetry.SampleQuery{GPU: uuid, Page: telemetry.Page{Limit: 2, Offset: 5}}))
}

func unknownGPU(t *testing.T, s Store) {
	write(t, s, fleetBatch("u", t0, fleet(1, 1), "M"))
	_, _, err := ReadPage(context.Background(), s, telemetry.SampleQuery{GPU: "GPU-nope", Page: telemetry.Page{Limit: 10}})
	assert.ErrorIs(t, err, telemetry.ErrNotFound)
}

func gpuMetadata(t *testing.T, s Store) {
	gpus := fleet(1, 1)
	write(t, s, fleetBatch("m1", t0, gpus, "M"))
	moved := gpus[0]
	moved.Hostname, moved.DriverVersion = "host-new", "550.54.15"
	write(t, s, fleetBatch("m2", t0.Add(time.Second), []telemetry.GPU{moved}, "M"))
	got, err := s.GPUs(context.Background(), telemetry.GPUFilter{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, moved, got[0].GPU)
	assert.Len(t, samples(t, s, telemetry.SampleQuery{GPU: moved.UUID}), 2, "samples stay with the GPU")
}

func concurrentWriters(t *testing.T, s Store) {
	gpus := fleet(4, 8)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 5 {
				// Every writer touches every GPU and metric, in a different order, each at
				// times of its own.
				order := append([]telemetry.GPU(nil), gpus[w*8:]...)
				order = append(order, gpus[:w*8]...)
				b := fleetBatch(fmt.Sprintf("c%d-%d", w, i), t0.Add(time.Duration(w*5+i)*time.Second), order, "M1", "M2")
				_, err := s.WriteBatch(context.Background(), b)
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	st := stats(t, s)
	assert.Equal(t, telemetry.Stats{TotalSamples: 4 * 5 * 32 * 2, UniqueGPUs: 32, UniqueHosts: 4}, telemetry.Stats{
		TotalSamples: st.TotalSamples, UniqueGPUs: st.UniqueGPUs, UniqueHosts: st.UniqueHosts})
}

func inventory(t *testing.T, s Store) {
	ctx := context.Background()
	gpus := fleet(3, 2)
	gpus[5].ModelName = "NVIDIA A100-SXM4-80GB"
	write(t, s, fleetBatch("i1", t0, gpus, "DCGM_FI_DEV_POWER_USAGE"))
	write(t, s, fleetBatch("i2", t0.Add(time.Minute), gpus[:3], "DCGM_FI_DEV_GPU_UTIL"))

	all, err := s.GPUs(ctx, telemetry.GPUFilter{})
	require.NoError(t, err)
	require.Len(t, all, 6)
	assert.True(t, all[0].FirstSeen.Equal(t0) && all[0].LastSeen.Equal(t0.Add(time.Minute)), "%+v", all[0])
	assert.True(t, all[5].FirstSeen.Equal(t0) && all[5].LastSeen.Equal(t0), "%+v", all[5])
	bare, err := s.GPUs(ctx, telemetry.GPUFilter{NoSpan: true})
	require.NoError(t, err)
	require.Len(t, bare, len(all))
	for i, g := range bare {
		assert.Equal(t, all[i].GPU, g.GPU, "the same devices, in the same order")
		assert.True(t, g.FirstSeen.IsZero() && g.LastSeen.IsZero(), "no span: %+v", g)
	}

	for _, tt := range []struct {
		f    telemetry.GPUFilter
		want int
	}{
		{telemetry.GPUFilter{Hostname: "host-01"}, 2},
		{telemetry.GPUFilter{Model: "NVIDIA A100-SXM4-80GB"}, 1},
		{telemetry.GPUFilter{Hostname: "host-02", Model: "NVIDIA H100 80GB HBM3"}, 1},
		{telemetry.GPUFilter{UUID: gpus[3].UUID}, 1},
		{telemetry.GPUFilter{Hostname: "nope"}, 0},
	} {
		got, err := s.GPUs(ctx, tt.f)
		require.NoError(t, err)
		assert.Len(t, got, tt.want, "%+v", tt.f)
	}

	hosts, err := s.Hosts(ctx, telemetry.HostFilter{})
	require.NoError(t, err)
	require.Len(t, hosts, 3)
	assert.Equal(t, "host-00", hosts[0].Hostname)
	assert.Equal(t, 2, hosts[0].GPUs)
	assert.True(t, hosts[0].LastSeen.Equal(t0.Add(time.Minute)))
	assert.True(t, hosts[2].LastSeen.Equal(t0))

	metrics, err := s.Metrics(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE"}, metrics)

	st := stats(t, s)
	assert.True(t, st.Oldest.Equal(t0) && st.Newest.Equal(t0.Add(time.Minute)), "%+v", st)
}

func metricFilterAndOrder(t *testing.T, s Store) {
	gpus := fleet(1, 1)
	for i := range 3 {
		write(t, s, fleetBatch(fmt.Sprintf("f%d", i), t0.Add(time.Duration(i)*time.Second), gpus, "M1", "M2", "M3"))
	}
	uuid := gpus[0].UUID
	only := samples(t, s, telemetry.SampleQuery{GPU: uuid, Metrics: []string{"M2", "M3", "unknown"}})
	require.Len(t, only, 6)
	for _, smp := range only {
		assert.Contains(t, []string{"M2", "M3"}, smp.Metric)
	}
	assert.Empty(t, samples(t, s, telemetry.SampleQuery{GPU: uuid, Metrics: []string{"unknown"}}))

	asc := samples(t, s, telemetry.SampleQuery{GPU: uuid})
	desc := samples(t, s, telemetry.SampleQuery{GPU: uuid, Desc: true})
	require.Len(t, desc, 9)
	for i := range asc {
		assert.Equal(t, asc[i], desc[len(desc)-1-i], "desc is asc reversed")
	}
}

func cursorPaging(t *testing.T, s Store) {
	ctx := context.Background()
	gpus := fleet(1, 1)
	uuid := gpus[0].UUID
	for i := range 10 {
		write(t, s, fleetBatch(fmt.Sprintf("c%d", i), t0.Add(time.Duration(i)*time.Second), gpus, "M1", "M2", "M3"))
	}
	for round, desc := range []bool{false, true} {
		seen := map[string]int{}
		q := telemetry.SampleQuery{GPU: uuid, Desc: desc, Range: telemetry.TimeRange{End: t0.Add(9 * time.Second)},
			Page: telemetry.Page{Limit: 7}}
		for pages := 1; ; pages++ {
			page, next, err := ReadPage(ctx, s, q)
			require.NoError(t, err)
			for _, smp := range page {
				seen[smp.Metric+" "+smp.Time.Format(time.RFC3339)]++
			}
			// Samples arriving meanwhile, inside the window and after it, shift nothing.
			shift := time.Duration(round*100+pages) * time.Minute
			write(t, s, fleetBatch(fmt.Sprintf("late-%d-%d", round, pages), t0.Add(time.Hour+shift), gpus, "M1"))
			write(t, s, fleetBatch(fmt.Sprintf("early-%d-%d", round, pages), t0.Add(-time.Hour-shift), gpus, "M9"))
			if next == "" {
				break
			}
			require.Len(t, page, 7)
			q.Page.Cursor = next
		}
		for k, n := range seen {
			assert.Equal(t, 1, n, "sample %s seen once (desc=%v)", k, desc)
		}
		for i := range 10 {
			for _, m := range []string{"M1", "M2", "M3"} {
				assert.Contains(t, seen, m+" "+t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339), "desc=%v", desc)
			}
		}
	}
	_, _, err := ReadPage(ctx, s, telemetry.SampleQuery{GPU: uuid, Page: telemetry.Page{Limit: 5, Cursor: "garbage"}})
	assert.ErrorIs(t, err, telemetry.ErrInvalid)
}

func streamsWholeWindow(t *testing.T, s Store) {
	ctx := context.Background()
	gpus := fleet(1, 1)
	for i := range 30 {
		write(t, s, fleetBatch(fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Second), gpus, "M1", "M2"))
	}
	q := telemetry.SampleQuery{GPU: gpus[0].UUID, Range: telemetry.TimeRange{Start: t0.Add(5 * time.Second)}}
	all, next, err := ReadPage(ctx, s, q) // no limit
	require.NoError(t, err)
	assert.Len(t, all, 50)
	assert.Empty(t, next)
	assert.Equal(t, samples(t, s, q), all, "as a page of 1,000 has them")

	// After a cursor or an offset, the rest.
	q.Page.Limit = 7
	_, next, err = ReadPage(ctx, s, q)
	require.NoError(t, err)
	rest, _, err := ReadPage(ctx, s, telemetry.SampleQuery{GPU: q.GPU, Range: q.Range, Page: telemetry.Page{Cursor: next}})
	require.NoError(t, err)
	assert.Equal(t, all[7:], rest)
	rest, _, err = ReadPage(ctx, s, telemetry.SampleQuery{GPU: q.GPU, Range: q.Range, Page: telemetry.Page{Offset: 45}})
	require.NoError(t, err)
	assert.Equal(t, all[45:], rest)

	stop := fmt.Errorf("enough")
	n := 0
	_, err = s.Samples(ctx, q, func(telemetry.Sample) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 3, n)
	_, err = s.Samples(ctx, telemetry.SampleQuery{GPU: "GPU-nope"}, func(telemetry.Sample) error { return nil })
	assert.ErrorIs(t, err, telemetry.ErrNotFound)
}

func latest(t *testing.T, s Store) {
	ctx := context.Background()
	gpus := fleet(1, 2)
	write(t, s, fleetBatch("l1", t0, gpus, "M1", "M2"))
	b := fleetBatch("l2", t0.Add(time.Minute), gpus[:1], "M1")
	b.Samples[0].Value, b.Samples[0].Pod = 42, "pod-x"
	write(t, s, b)
	write(t, s, fleetBatch("l3", t0.Add(time.Hour), gpus[1:], "M3"))

	got, err := s.Latest(ctx, gpus[0].UUID)
	require.NoError(t, err)
	require.Len(t, got, 2, "M3 was never reported by this GPU")
	assert.Equal(t, "M1", got[0].Metric)
	assert.EqualValues(t, 42, got[0].Value)
	assert.Equal(t, "pod-x", got[0].Pod)
	assert.True(t, got[0].Time.Equal(t0.Add(time.Minute)))
	assert.Equal(t, "M2", got[1].Metric)
	assert.True(t, got[1].Time.Equal(t0))

	_, err = s.Latest(ctx, "GPU-nope")
	assert.ErrorIs(t, err, telemetry.ErrNotFound)
}

func aggregates(t *testing.T, s Store) {
	ctx := context.Background()
	gpus := fleet(1, 1)
	uuid := gpus[0].UUID
	// Values 0..179, one per second, for three minutes from a whole minute.
	base := time.Date(2025, 7, 18, 20, 42, 0, 0, time.UTC)
	for i := range 180 {
		b := fleetBatch(fmt.Sprintf("a%d", i), base.Add(time.Duration(i)*time.Second), gpus, "M")
		b.Samples[0].Value = float64(i)
		write(t, s, b)
	}
	for _, tt := range []struct {
		agg  telemetry.Aggregation
		want []float64 // per minute
	}{
		{telemetry.AggAvg, []float64{29.5, 89.5, 149.5}},
		{telemetry.AggMin, []float64{0, 60, 120}},
		{telemetry.AggMax, []float64{59, 119, 179}},
		{telemetry.AggLast, []float64{59, 119, 179}},
		{telemetry.AggCount, []float64{60, 60, 60}},
	} {
		t.Run(string(tt.agg), func(t *testing.T) {
			got, err := aggregate(ctx, s, telemetry.AggregateQuery{GPU: uuid, Step: time.Minute, Agg: tt.agg})
			require.NoError(t, err)
			require.Len(t, got, 3)
			for i, b := range got {
				assert.True(t, b.Start.Equal(base.Add(time.Duration(i)*time.Minute)), "bucket %d starts %s", i, b.Start)
				assert.Equal(t, "M", b.Metric)
				assert.InDelta(t, tt.want[i], b.Value, 1e-9)
				assert.EqualValues(t, 60, b.Count)
			}
		})
	}
	window := telemetry.TimeRange{Start: base.Add(30 * time.Second), End: base.Add(89 * time.Second)}
	got, err := aggregate(ctx, s, telemetry.AggregateQuery{GPU: uuid, Range: window, Step: time.Minute, Agg: telemetry.AggCount})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.EqualValues(t, 30, got[0].Value)
	assert.EqualValues(t, 30, got[1].Value)

	_, err = aggregate(ctx, s, telemetry.AggregateQuery{GPU: "GPU-nope", Step: time.Minute, Agg: telemetry.AggAvg})
	assert.ErrorIs(t, err, telemetry.ErrNotFound)
}

// aggregate is the query service's aggregation over s: the store holds no aggregation of
// its own, but what it reads must add up.
func aggregate(ctx context.Context, s Store, q telemetry.AggregateQuery) ([]telemetry.Bucket, error) {
	res, err := query.New(s, s, s, s).Aggregate(ctx, q)
	return res.Buckets, err
}

// aggregateByName aggregates metrics that come and go, registered in an order other than
// their names': each bucket lists its own metrics, by name.
func aggregateByName(t *testing.T, s Store) {
	ctx := context.Background()
	gpus := fleet(1, 1)
	base := time.Date(2025, 7, 18, 20, 42, 0, 0, time.UTC)
	write(t, s, fleetBatch("z", base, gpus, "Z", "A"))                  // Z = 0, A = 1
	write(t, s, fleetBatch("m", base.Add(time.Minute), gpus, "M", "Z")) // M = 0, Z = 1
	write(t, s, fleetBatch("a", base.Add(2*time.Minute), gpus, "A"))    // A = 0
	got, err := aggregate(ctx, s, telemetry.AggregateQuery{GPU: gpus[0].UUID, Step: time.Minute, Agg: telemetry.AggMax})
	require.NoError(t, err)
	var seen []string
	for _, b := range got {
		seen = append(seen, fmt.Sprintf("%s %s=%g", b.Start.Sub(base), b.Metric, b.Value))
	}
	assert.Equal(t, []string{"0s A=1", "0s Z=0", "1m0s M=0", "1m0s Z=1", "2m0s A=0"}, seen)
}

// interleaved writes batches whose samples interleave in time — long ones, several minutes
// each, with many samples per GPU — and reads them back through every kind of query.
func interleaved(t *testing.T, s Store) {
	ctx := context.Background()
	gpus := fleet(1, 2)
	uuid := gpus[0].UUID
	var want []telemetry.Sample // gpus[0]'s samples, in (time, metric) order
	for parity := range 2 {
		b := telemetry.Batch{ID: fmt.Sprintf("odd-even-%d", parity), GPUs: gpus}
		for k := range 150 {
			at := t0.Add(time.Duration(2*k+parity) * time.Second)
			for _, g := range gpus {
				for _, m := range []string{"M1", "M2"} {
					b.Samples = append(b.Samples, telemetry.Sample{GPU: g.UUID, Metric: m, Time: at, Value: float64(k*10 + parity)})
				}
			}
		}
		b.Samples[0].Pod, b.Samples[2].Container = "pod-a", "ctr-b"
		write(t, s, b)
	}
	// A third metric, registered last, in the middle of the others and at an instant they share.
	late := fleetBatch("late", t0.Add(100*time.Second), gpus[:1], "M3")
	late.Samples[0].Namespace = "ns"
	write(t, s, late)

	all := samples(t, s, telemetry.SampleQuery{GPU: uuid})
	require.Len(t, all, 601)
	for i := 1; i < len(all); i++ {
		prev, cur := all[i-1], all[i]
		require.True(t, prev.Time.Before(cur.Time) || (prev.Time.Equal(cur.Time) && prev.Metric < cur.Metric),
			"sample %d (%s %s) after %s %s", i, cur.Time, cur.Metric, prev.Time, prev.Metric)
		want = append(want, prev)
	}
	want = append(want, all[len(all)-1])
	assert.Equal(t, "pod-a", want[0].Pod)
	assert.Equal(t, "ns", want[202].Namespace, "M3 sorts after M1 and M2 at t0+100s")

	desc := samples(t, s, telemetry.SampleQuery{GPU: uuid, Desc: true})
	require.Len(t, desc, len(want))
	for i := range desc {
		require.Equal(t, want[len(want)-1-i], desc[i], "desc is asc reversed")
	}

	window := telemetry.TimeRange{Start: t0.Add(37 * time.Second), End: t0.Add(211 * time.Second)}
	inWindow := func(smp telemetry.Sample) bool {
		return !smp.Time.Before(window.Start) && !smp.Time.After(window.End)
	}
	var expect []telemetry.Sample
	for _, smp := range want {
		if inWindow(smp) {
			expect = append(expect, smp)
		}
	}
	for _, desc := range []bool{false, true} {
		q := telemetry.SampleQuery{GPU: uuid, Range: window, Desc: desc, Page: telemetry.Page{Limit: 7}}
		var paged []telemetry.Sample
		for {
			page, next, err := ReadPage(ctx, s, q)
			require.NoError(t, err)
			paged = append(paged, page...)
			if next == "" {
				break
			}
			q.Page.Cursor = next
		}
		require.Len(t, paged, len(expect), "desc=%v", desc)
		for i := range paged {
			j := i
			if desc {
				j = len(expect) - 1 - i
			}
			require.Equal(t, expect[j], paged[i], "desc=%v, sample %d", desc, i)
		}
	}
	byOffset := samples(t, s, telemetry.SampleQuery{GPU: uuid, Range: window, Page: telemetry.Page{Limit: 5, Offset: 100}})
	assert.Equal(t, expect[100:105], byOffset)

	latest, err := s.Latest(ctx, uuid)
	require.NoError(t, err)
	require.Len(t, latest, 3)
	assert.True(t, latest[0].Time.Equal(t0.Add(299*time.Second)), "M1 at %s", latest[0].Time)
	assert.True(t, latest[2].Time.Equal(t0.Add(100*time.Second)), "M3 at %s", latest[2].Time)

	buckets, err := aggregate(ctx, s, telemetry.AggregateQuery{GPU: uuid, Step: time.Minute, Agg: telemetry.AggCount,
		Metrics: []string{"M2"}})
	require.NoError(t, err)
	// One M2 sample a second for 300 seconds from t0 = hh:42:34.
	counts := []float64{26, 60, 60, 60, 60, 34}
	require.Len(t, buckets, len(counts))
	for i, b := range buckets {
		assert.True(t, b.Start.Equal(t0.Truncate(time.Minute).Add(time.Duration(i)*time.Minute)), "bucket %d at %s", i, b.Start)
		assert.Equal(t, counts[i], b.Value, "bucket %d", i)
	}
}

// A MIG instance is a device of its own, keyed by its GPU's UUID and its instance ID: its
// samples never merge with the GPU's or another instance's, and every label comes back.
func migInstances(t *testing.T, s Store) {
	ctx := context.Background()
	whole := telemetry.GPU{UUID: "GPU-m", Hostname: "host-m", Index: 0, Device: "nvidia0", ModelName: "NVIDIA A100-SXM4-80GB",
		DriverVersion: "550.54.15", PCIBusID: "00000000:07:00.0", Labels: map[string]string{"instance": "host-m:9400", "job": "dcgm"}}
	b := telemetry.Batch{ID: "mig", GPUs: []telemetry.GPU{whole}}
	b.Samples = append(b.Samples, telemetry.Sample{GPU: whole.Key(), Metric: "DCGM_FI_DEV_GPU_TEMP", Time: t0, Value: 40})
	for i := range 7 {
		g := whole
		g.Instance, g.InstanceProfile = fmt.Sprint(i+1), "1g.10gb"
		g.Labels = map[string]string{"instance": "host-m:9400", "job": "dcgm", "extra": fmt.Sprint(i)}
		b.GPUs = append(b.GPUs, g)
		b.Samples = append(b.Samples, telemetry.Sample{GPU: g.Key(), Metric: "DCGM_FI_PROF_GR_ENGINE_ACTIVE", Time: t0,
			Value: float64(i) / 10, Pod: fmt.Sprint("pod-", i), Namespace: "team-a", Container: "main"})
	}
	require.True(t, write(t, s, b))

	gpus, err := s.GPUs(ctx, telemetry.GPUFilter{UUID: "GPU-m"})
	require.NoError(t, err)
	require.Len(t, gpus, 8, "the GPU and its 7 instances")
	assert.Equal(t, whole, gpus[0].GPU, "the whole GPU first, every field and label kept")
	for i, g := range gpus[1:] {
		assert.Equal(t, fmt.Sprint(i+1), g.Instance, "instances in numeric order")
		assert.Equal(t, "1g.10gb", g.InstanceProfile)
		assert.Equal(t, fmt.Sprint(i), g.Labels["extra"])
		got := samples(t, s, telemetry.SampleQuery{GPU: g.Key()})
		require.Len(t, got, 1, "instance %s holds its own sample only", g.Instance)
		assert.Equal(t, float64(i)/10, got[0].Value)
		assert.Equal(t, fmt.Sprint("pod-", i), got[0].Pod)
		assert.Equal(t, "team-a", got[0].Namespace)
	}
	got := samples(t, s, telemetry.SampleQuery{GPU: whole.Key()})
	require.Len(t, got, 1, "the whole GPU's samples are its own")
	assert.Equal(t, "DCGM_FI_DEV_GPU_TEMP", got[0].Metric)

	_, _, err = ReadPage(ctx, s, telemetry.SampleQuery{GPU: telemetry.DeviceKey("GPU-m", "8"), Page: telemetry.Page{Limit: 10}})
	assert.ErrorIs(t, err, telemetry.ErrNotFound, "an instance the GPU does not have")
	st := stats(t, s)
	assert.Equal(t, int64(1), st.UniqueGPUs, "instances are not GPUs of their own in the count")
	assert.Equal(t, int64(8), st.TotalSamples)
}

// Listings paged by key walk every GPU and host once, in order, a GPU's MIG instances
// always on its page, also while GPUs arrive between pages.
func inventoryPages(t *testing.T, s Store) {
	ctx := context.Background()
	gpus := fleet(5, 3)
	mig := gpus[4] // host-01, index 1
	for i := range 3 {
		g := mig
		g.Instance, g.InstanceProfile = fmt.Sprint(i+1), "2g.20gb"
		gpus = append(gpus, g)
	}
	write(t, s, fleetBatch("p1", t0, gpus, "DCGM_FI_DEV_GPU_TEMP"))
	all, err := s.GPUs(ctx, telemetry.GPUFilter{})
	require.NoError(t, err)
	require.Len(t, all, 18)

	key := func(g telemetry.GPUInfo) telemetry.GPUPosition {
		return telemetry.GPUPosition{Hostname: g.Hostname, Index: g.Index, UUID: g.UUID}
	}
	var walked []telemetry.GPUInfo
	var after *telemetry.GPUPosition
	pages := 0
	for {
		page, err := s.GPUs(ctx, telemetry.GPUFilter{After: after, Limit: 4})
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		pages++
		distinct := map[telemetry.GPUPosition]bool{}
		for _, g := range page {
			distinct[key(g)] = true
		}
		assert.LessOrEqual(t, len(distinct), 4, "page %d: four GPUs at most", pages)
		walked = append(walked, page...)
		last := key(page[len(page)-1])
		after = &last
		if pages == 1 { // a GPU arriving before the cursor is not seen; after it, it is
			write(t, s, fleetBatch("p2", t0, []telemetry.GPU{
				{UUID: "GPU-00-9", Hostname: "host-00", Index: 9, Device: "nvidia9", ModelName: "x"},
				{UUID: "GPU-04-9", Hostname: "host-04", Index: 9, Device: "nvidia9", ModelName: "x"},
			}, "DCGM_FI_DEV_GPU_TEMP"))
		}
		require.Less(t, pages, 10)
	}
	require.Len(t, walked, 19, "every device once, and the one arrived after the cursor")
	for i := range all {
		assert.Equal(t, all[i].Key(), walked[i].Key(), "device %d in order", i)
	}
	assert.Equal(t, "GPU-04-9", walked[18].UUID)
	for i, g := range walked {
		if g.UUID == mig.UUID && g.Instance != "" {
			assert.Equal(t, mig.UUID, walked[i-1].UUID, "instance %s on the page of its GPU", g.Instance)
		}
	}

	page, err := s.GPUs(ctx, telemetry.GPUFilter{Hostname: "host-01", Limit: 2})
	require.NoError(t, err)
	require.Len(t, page, 5, "host-01's first two GPUs, the second with its 3 instances")
	page, err = s.GPUs(ctx, telemetry.GPUFilter{Hostname: "host-01", After: &telemetry.GPUPosition{Hostname: "host-01", Index: 1, UUID: mig.UUID}})
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, "GPU-01-2", page[0].UUID, "filters and the cursor together")

	var hosts []string
	afterHost := ""
	for range 10 {
		page, err := s.Hosts(ctx, telemetry.HostFilter{After: afterHost, Limit: 2})
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		assert.LessOrEqual(t, len(page), 2)
		for _, h := range page {
			hosts = append(hosts, h.Hostname)
		}
		afterHost = page[len(page)-1].Hostname
	}
	assert.Equal(t, []string{"host-00", "host-01", "host-02", "host-03", "host-04"}, hosts)
	one, err := s.Hosts(ctx, telemetry.HostFilter{After: "host-00", Limit: 1})
	require.NoError(t, err)
	require.Len(t, one, 1)
	assert.Equal(t, "host-01", one[0].Hostname)
	assert.Equal(t, 3, one[0].GPUs, "a MIG-partitioned GPU counts once")
	assert.True(t, one[0].LastSeen.Equal(t0), "%v", one[0].LastSeen)
}

// A write may register more GPUs and (GPU, metric) pairs than one SQL statement can bind
// parameters for (a group commit of a large fleet's batches).
func manyGPUs(t *testing.T, s Store) {
	ctx := context.Background()
	gpus := fleet(1000, 8)
	metrics := []string{"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_FB_USED"}
	b := fleetBatch("many", t0, gpus, metrics...)
	stored, err := s.WriteBatches(ctx, []telemetry.Batch{b})
	require.NoError(t, err)
	assert.Equal(t, []telemetry.Written{{Stored: true}}, stored)
	all, err := s.GPUs(ctx, telemetry.GPUFilter{})
	require.NoError(t, err)
	assert.Len(t, all, 8000)
	assert.Equal(t, int64(8000*len(metrics)), stats(t, s).TotalSamples)
}

// The same device, metric and time is stored once whatever batches carry it: a replay cut
// into other batches, an overlapping resend, a repeat within one batch or one write. The
// first stored wins.
func eachSampleOnce(t *testing.T, s Store) {
	ctx := context.Background()
	gpus := fleet(2, 2)
	at := func(k int) time.Time { return t0.Add(time.Duration(k) * 10 * time.Second) }
	batch := func(id string, from, to int, value float64) telemetry.Batch {
		b := telemetry.Batch{ID: id, GPUs: gpus}
		for k := from; k < to; k++ {
			for _, g := range gpus {
				for _, m := range []string{"M1", "M2"} {
					b.Samples = append(b.Samples, telemetry.Sample{GPU: g.UUID, Metric: m, Time: at(k), Value: value + float64(k)})
				}
			}
		}
		return b
	}
	written, err := s.WriteBatches(ctx, []telemetry.Batch{batch("first", 0, 10, 0)})
	require.NoError(t, err)
	assert.Equal(t, []telemetry.Written{{Stored: true}}, written)

	// Another batching of an overlapping span, with other values: only the new times go in.
	written, err = s.WriteBatches(ctx, []telemetry.Batch{batch("overlap", 5, 15, 1000)})
	require.NoError(t, err)
	assert.Equal(t, []telemetry.Written{{Stored: true, AlreadyStored: 5 * 4 * 2}}, written)

	// In one write: a later batch repeating an earlier one's samples, and a batch with a
	// sample twice.
	twice := batch("twice", 20, 21, 0)
	twice.Samples = append(twice.Samples, twice.Samples[0])
	written, err = s.WriteBatches(ctx, []telemetry.Batch{batch("a", 15, 18, 0), batch("b", 16, 20, 500), twice})
	require.NoError(t, err)
	assert.Equal(t, []telemetry.Written{{Stored: true}, {Stored: true, AlreadyStored: 2 * 4 * 2}, {Stored: true, AlreadyStored: 1}}, written)

	for _, g := range gpus {
		got := samples(t, s, telemetry.SampleQuery{GPU: g.UUID})
		require.Len(t, got, 21*2, "%s: every time once, each metric", g.UUID)
		byTime := map[string]float64{}
		for _, smp := range got {
			key := smp.Metric + "@" + smp.Time.UTC().Format(time.RFC3339)
			_, dup := byTime[key]
			assert.False(t, dup, "%s listed twice", key)
			byTime[key] = smp.Value
		}
		assert.Equal(t, float64(7), byTime["M1@"+at(7).UTC().Format(time.RFC3339)], "the first stored wins")
		assert.Equal(t, float64(1012), byTime["M1@"+at(12).UTC().Format(time.RFC3339)], "a time stored by the overlap only")
		assert.Equal(t, float64(16), byTime["M2@"+at(16).UTC().Format(time.RFC3339)], "an earlier batch of the same write wins")
		assert.Equal(t, float64(518), byTime["M2@"+at(18).UTC().Format(time.RFC3339)])
	}
	assert.EqualValues(t, 21*4*2, stats(t, s).TotalSamples, "the stats count each sample once")
	buckets, err := aggregate(ctx, s, telemetry.AggregateQuery{GPU: gpus[0].UUID, Agg: telemetry.AggCount, Step: time.Hour})
	require.NoError(t, err)
	var n float64
	for _, b := range buckets {
		n += b.Value
	}
	assert.EqualValues(t, 21*2, n, "aggregations count each sample once")
}

// Series of many devices at once are what Samples gives device by device, split by metric
// and workload: over batches that overlap in time, late samples, workloads that change,
// MIG instances, windows and metric filters.
func seriesOfManyDevices(t *testing.T, s Store) {
	ctx := context.Background()
	gpus := fleet(3, 2)
	mig := gpus[0]
	mig.Instance, mig.InstanceProfile = "3", "1g.10gb"
	gpus = append(gpus, mig)
	metrics := []string{"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE"}
	for k := range 3 { // three batches, each of every other second, interleaving in time
		b := telemetry.Batch{ID: fmt.Sprintf("series-%d", k), GPUs: gpus}
		for i := range 40 {
			at := t0.Add(time.Duration(3*i+k) * time.Second)
			for gi, g := range gpus {
				for mi, m := range metrics {
					smp := telemetry.Sample{GPU: g.Key(), Metric: m, Time: at, Value: float64(gi*1000+mi*100+i) + 0.5*float64(k)}
					if gi%2 == 0 && i >= 20 {
						smp.Pod, smp.Namespace, smp.Container = "train-1", "team-a", "main" // a pod takes the GPU
					}
					b.Samples = append(b.Samples, smp)
				}
			}
		}
		write(t, s, b)
	}
	late := fleetBatch("late", t0.Add(31*time.Second+500*time.Millisecond), gpus[:2], metrics[0])
	write(t, s, late)

	type seriesKey struct{ gpu, metric, pod, namespace, container string }
	for _, q := range []telemetry.SeriesQuery{
		{},
		{Metrics: metrics[1:2]},
		{Metrics: []string{metrics[2], metrics[0], "DCGM_FI_NO_SUCH_FIELD"}},
		{Range: telemetry.TimeRange{Start: t0.Add(17 * time.Second), End: t0.Add(79 * time.Second)}},
		{Range: telemetry.TimeRange{Start: t0.Add(31*time.Second + 500*time.Millisecond), End: t0.Add(31*time.Second + 500*time.Millisecond)}, Metrics: metrics[:1]},
		{Metrics: []string{"DCGM_FI_NO_SUCH_FIELD"}},
	} {
		want := map[seriesKey][]telemetry.Point{}
		for _, g := range gpus {
			all, _, err := ReadPage(ctx, s, telemetry.SampleQuery{GPU: g.Key(), Range: q.Range, Metrics: q.Metrics})
			require.NoError(t, err)
			for _, smp := range all {
				k := seriesKey{smp.GPU, smp.Metric, smp.Pod, smp.Namespace, smp.Container}
				want[k] = append(want[k], telemetry.Point{Time: smp.Time.UnixMicro(), Value: smp.Value})
			}
		}
		q.GPUs = []string{"GPU-unknown"}
		for _, g := range gpus {
			q.GPUs = append(q.GPUs, g.Key())
		}
		got := map[seriesKey][]telemetry.Point{}
		var order []telemetry.Series
		require.NoError(t, s.Series(ctx, q, func(series telemetry.Series) error {
			k := seriesKey{series.GPU, series.Metric, series.Pod, series.Namespace, series.Container}
			require.NotContains(t, got, k, "one call a series")
			require.NotEmpty(t, series.Points, "%v", k)
			got[k] = series.Points
			order = append(order, series)
			return nil
		}))
		require.Equal(t, len(want), len(got), "%+v", q)
		for k, pts := range want {
			require.Equal(t, pts, got[k], "%+v: %v", q, k)
		}
		// A transient read may reuse a series' memory for the next, never change what it reads.
		transient := q
		transient.Transient = true
		copied := map[seriesKey][]telemetry.Point{}
		for range 2 { // the second time over slices the first gave back
			clear(copied)
			require.NoError(t, s.Series(ctx, transient, func(series telemetry.Series) error {
				copied[seriesKey{series.GPU, series.Metric, series.Pod, series.Namespace, series.Container}] = slices.Clone(series.Points)
				return nil
			}))
			require.Equal(t, got, copied, "%+v, transient", q)
		}
		done := map[string]bool{}
		for i, series := range order {
			if i > 0 && order[i-1].GPU == series.GPU {
				prev := order[i-1]
				assert.LessOrEqual(t, prev.Metric+"\x00"+prev.Pod, series.Metric+"\x00"+series.Pod, "by metric, then workload")
				continue
			}
			require.False(t, done[series.GPU], "a device's series come together")
			done[series.GPU] = true
		}
	}
	stop := errors.New("enough")
	calls := 0
	err := s.Series(ctx, telemetry.SeriesQuery{GPUs: []string{gpus[0].Key(), gpus[1].Key()}}, func(telemetry.Series) error {
		calls++
		return stop
	})
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 1, calls, "stops at fn's first error")
}

// A time-sliced GPU is reported once per pod holding it, with the same values at the same
// time: each pod's sample is its own (Prometheus keeps one series a pod), stored once
// however often it is delivered.
func timeSliced(t *testing.T, s Store) {
	ctx := context.Background()
	gpu := fleet(1, 1)[0]
	pods := []string{"infer-a", "infer-b", "infer-c"}
	batch := func(id string, from, to int) telemetry.Batch {
		b := telemetry.Batch{ID: id, GPUs: []telemetry.GPU{gpu}}
		for k := from; k < to; k++ {
			for _, pod := range pods {
				b.Samples = append(b.Samples, telemetry.Sample{GPU: gpu.Key(), Metric: "DCGM_FI_DEV_GPU_UTIL",
					Time: t0.Add(time.Duration(k) * 10 * time.Second), Value: float64(k), Pod: pod, Namespace: "serving"})
			}
		}
		return b
	}
	written, err := s.WriteBatches(ctx, []telemetry.Batch{batch("sliced-1", 0, 10)})
	require.NoError(t, err)
	assert.Equal(t, []telemetry.Written{{Stored: true}}, written, "no pod's sample is another's repeat")
	written, err = s.WriteBatches(ctx, []telemetry.Batch{batch("sliced-2", 5, 12)})
	require.NoError(t, err)
	assert.Equal(t, []telemetry.Written{{Stored: true, AlreadyStored: 5 * 3}}, written, "each pod's sample once")

	byPod := map[string][]telemetry.Point{}
	require.NoError(t, s.Series(ctx, telemetry.SeriesQuery{GPUs: []string{gpu.Key()}}, func(series telemetry.Series) error {
		byPod[series.Pod] = series.Points
		return nil
	}))
	require.Len(t, byPod, 3, "one series a pod")
	for _, pod := range pods {
		require.Len(t, byPod[pod], 12, pod)
		assert.Equal(t, float64(11), byPod[pod][11].Value, pod)
	}
	assert.Len(t, samples(t, s, telemetry.SampleQuery{GPU: gpu.Key()}), 12*3)
	assert.EqualValues(t, 12*3, stats(t, s).TotalSamples)
}
