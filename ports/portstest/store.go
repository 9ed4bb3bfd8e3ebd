package portstest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// Store is a store under test.
type Store interface {
	ports.BatchWriter
	ports.Reader
}

// TestStore runs the ports.BatchWriter and ports.Reader contract. newStore returns an empty
// store private to the calling test.
func TestStore(t *testing.T, newStore func(t *testing.T) Store) {
	t.Run("StoresAndReadsBack", func(t *testing.T) { storesAndReadsBack(t, newStore(t)) })
	t.Run("RedeliveredBatchStoresNothing", func(t *testing.T) { redeliveredBatch(t, newStore(t)) })
	t.Run("ConcurrentDuplicatesStoreOnce", func(t *testing.T) { concurrentDuplicates(t, newStore(t)) })
	t.Run("TimeWindowIsInclusive", func(t *testing.T) { timeWindow(t, newStore(t)) })
	t.Run("Paging", func(t *testing.T) { paging(t, newStore(t)) })
	t.Run("UnknownGPU", func(t *testing.T) { unknownGPU(t, newStore(t)) })
	t.Run("GPUMetadataFollowsLatestBatch", func(t *testing.T) { gpuMetadata(t, newStore(t)) })
	t.Run("ConcurrentWritersOfSharedGPUs", func(t *testing.T) { concurrentWriters(t, newStore(t)) })
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

func write(t *testing.T, s ports.BatchWriter, b telemetry.Batch) bool {
	t.Helper()
	stored, err := s.WriteBatch(context.Background(), b)
	require.NoError(t, err)
	return stored
}

func samples(t *testing.T, s ports.Reader, q telemetry.SampleQuery) []telemetry.Sample {
	t.Helper()
	if q.Page.Limit == 0 {
		q.Page.Limit = 1000
	}
	got, err := s.Samples(context.Background(), q)
	require.NoError(t, err)
	return got
}

func stats(t *testing.T, s ports.Reader) telemetry.Stats {
	t.Helper()
	st, err := s.Stats(context.Background())
	require.NoError(t, err)
	return st
}

func storesAndReadsBack(t *testing.T, s Store) {
	ctx := context.Background()
	empty := stats(t, s)
	assert.Equal(t, telemetry.Stats{}, empty)

	gpus := fleet(3, 2)
	b := fleetBatch("b1", t0.Add(123456*time.Microsecond), gpus, "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE")
	b.Samples[0].Container, b.Samples[0].Pod, b.Samples[0].Namespace = "trainer", "job-7", "ml"
	b.Samples[1].Value = -12.25
	require.True(t, write(t, s, b))

	got, err := s.GPUs(ctx)
	require.NoError(t, err)
	assert.Equal(t, gpus, got, "GPUs ordered by hostname, then index")
	assert.Equal(t, telemetry.Stats{TotalSamples: 12, UniqueGPUs: 6, UniqueHosts: 3}, stats(t, s))

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

	// The same samples under another batch ID are another batch.
	b.ID = "twice"
	assert.True(t, write(t, s, b))
	assert.Len(t, samples(t, s, telemetry.SampleQuery{GPU: gpus[0].UUID}), 6)
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
		assert.Equal(t, []string{"A", "B"}[i%2], smp.Metric, "then by metric name")
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
	_, err := s.Samples(context.Background(), telemetry.SampleQuery{GPU: "GPU-nope", Page: telemetry.Page{Limit: 10}})
	assert.ErrorIs(t, err, telemetry.ErrNotFound)
}

func gpuMetadata(t *testing.T, s Store) {
	gpus := fleet(1, 1)
	write(t, s, fleetBatch("m1", t0, gpus, "M"))
	moved := gpus[0]
	moved.Hostname, moved.DriverVersion = "host-new", "550.54.15"
	write(t, s, fleetBatch("m2", t0.Add(time.Second), []telemetry.GPU{moved}, "M"))
	got, err := s.GPUs(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []telemetry.GPU{moved}, got)
	assert.Len(t, samples(t, s, telemetry.SampleQuery{GPU: moved.UUID}), 2, "samples stay with the GPU")
}

func concurrentWriters(t *testing.T, s Store) {
	gpus := fleet(4, 8)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 5 {
				// Every writer touches every GPU and metric, in a different order.
				order := append([]telemetry.GPU(nil), gpus[w*8:]...)
				order = append(order, gpus[:w*8]...)
				b := fleetBatch(fmt.Sprintf("c%d-%d", w, i), t0.Add(time.Duration(i)*time.Second), order, "M1", "M2")
				_, err := s.WriteBatch(context.Background(), b)
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, telemetry.Stats{TotalSamples: 4 * 5 * 32 * 2, UniqueGPUs: 32, UniqueHosts: 4}, stats(t, s))
}
