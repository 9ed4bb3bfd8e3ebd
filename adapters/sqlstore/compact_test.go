package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports/portstest"
)

// bothStores runs fn against a fresh store of each dialect.
func bothStores(t *testing.T, fn func(t *testing.T, s *sqlstore.Store)) {
	for name, newURL := range map[string]func(testing.TB) string{
		"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) { fn(t, open(t, newURL(t))) })
	}
}

var compactT0 = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)

func compactFleet(n int) []telemetry.GPU {
	gpus := make([]telemetry.GPU, n)
	for i := range gpus {
		gpus[i] = telemetry.GPU{UUID: fmt.Sprintf("GPU-c-%d", i), Hostname: "host-c", Index: i, Device: fmt.Sprintf("nvidia%d", i)}
	}
	return gpus
}

// writeTicks writes batches of ticksPerBatch readings, 10 s apart, of metrics metrics for
// every GPU, starting at tick first: as a streamer cuts them, a few samples per GPU each.
func writeTicks(t *testing.T, s *sqlstore.Store, id string, gpus []telemetry.GPU, metrics, first, ticks, ticksPerBatch int) {
	t.Helper()
	writeTicksShifted(t, s, id, gpus, metrics, first, ticks, ticksPerBatch, 0)
}

// writeTicksShifted is writeTicks at times shift after the ticks.
func writeTicksShifted(t *testing.T, s *sqlstore.Store, id string, gpus []telemetry.GPU, metrics, first, ticks, ticksPerBatch int, shift time.Duration) {
	t.Helper()
	for b := first; b < first+ticks; b += ticksPerBatch {
		batch := telemetry.Batch{ID: fmt.Sprintf("%s-%d", id, b), GPUs: gpus}
		for tick := b; tick < min(b+ticksPerBatch, first+ticks); tick++ {
			at := compactT0.Add(time.Duration(tick)*10*time.Second + shift)
			for gi, g := range gpus {
				for m := range metrics {
					smp := telemetry.Sample{GPU: g.UUID, Metric: fmt.Sprintf("DCGM_FI_TEST_%02d", m), Time: at,
						Value: float64(tick*7+gi*3+m) / 4}
					if m == 0 {
						smp.Pod, smp.Namespace = fmt.Sprintf("pod-%d", tick%3), "ml"
					}
					batch.Samples = append(batch.Samples, smp)
				}
			}
		}
		stored, err := s.WriteBatch(context.Background(), batch)
		require.NoError(t, err)
		require.True(t, stored)
	}
}

// exportAll reads every sample of a query at once, as an export does.
func exportAll(t *testing.T, s *sqlstore.Store, q telemetry.SampleQuery) []telemetry.Sample {
	t.Helper()
	q.Page = telemetry.Page{}
	all, _, err := portstest.ReadPage(context.Background(), s, q)
	require.NoError(t, err)
	return all
}

// pageAll reads every sample of a query page by page, by cursor.
func pageAll(t *testing.T, s *sqlstore.Store, q telemetry.SampleQuery) []telemetry.Sample {
	t.Helper()
	var all []telemetry.Sample
	for range 10_000 {
		page, next, err := portstest.ReadPage(context.Background(), s, q)
		require.NoError(t, err)
		all = append(all, page...)
		if next == "" {
			return all
		}
		q.Page.Cursor = next
	}
	t.Fatal("paging does not end")
	return nil
}

// everything is what the API can read of a GPU, for comparing a store before and after
// compaction.
type everything struct {
	asc, desc, pages []telemetry.Sample
	latest           []telemetry.Sample
	avg              []telemetry.Bucket
	series           []telemetry.Series // of the pages' window and metrics
}

func readEverything(t *testing.T, s *sqlstore.Store, uuid string) everything {
	t.Helper()
	ctx := context.Background()
	var e everything
	e.asc = exportAll(t, s, telemetry.SampleQuery{GPU: uuid})
	e.desc = exportAll(t, s, telemetry.SampleQuery{GPU: uuid, Desc: true})
	// Pages of 7 over a window that starts and ends inside chunks, by cursor.
	q := telemetry.SampleQuery{GPU: uuid, Range: telemetry.TimeRange{Start: compactT0.Add(95 * time.Second),
		End: compactT0.Add(41 * time.Minute)}, Metrics: []string{"DCGM_FI_TEST_00", "DCGM_FI_TEST_03"}}
	q.Page.Limit = 7
	e.pages = pageAll(t, s, q)
	err := s.Series(ctx, telemetry.SeriesQuery{GPUs: []string{uuid}, Range: q.Range, Metrics: q.Metrics}, func(series telemetry.Series) error {
		e.series = append(e.series, series)
		return nil
	})
	require.NoError(t, err)
	points := 0
	for _, series := range e.series {
		points += len(series.Points)
	}
	require.Equal(t, len(e.pages), points, "the series hold the pages' samples")
	e.latest, err = s.Latest(ctx, uuid)
	require.NoError(t, err)
	res, err := query.New(s, s, s, s).Aggregate(ctx, telemetry.AggregateQuery{GPU: uuid, Step: time.Minute, Agg: telemetry.AggAvg})
	require.NoError(t, err)
	e.avg = res.Buckets
	return e
}

func TestCompactionKeepsEverySample(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpus := compactFleet(3)
		writeTicks(t, s, "a", gpus, 10, 0, 300, 2)                                // 150 chunks of 20 samples per GPU
		writeTicksShifted(t, s, "late", gpus[:1], 10, 100, 20, 20, 5*time.Second) // between the ticks already stored
		before := map[string]everything{}
		for _, g := range gpus {
			before[g.UUID] = readEverything(t, s, g.UUID)
		}
		require.Len(t, before[gpus[1].UUID].asc, 3000)
		require.Len(t, before[gpus[0].UUID].asc, 3200)

		st, err := s.Compact(ctx)
		require.NoError(t, err)
		assert.Equal(t, 3, st.GPUs)
		// The late batch's 200 samples of one GPU made a full chunk, left as it is, and one of
		// 72. Merged, each GPU's small chunks become unsealed blocks of at most 1,024: three
		// (3,000 samples, 3,072 with the late partial chunk).
		assert.Equal(t, 3*150+1, st.ChunksRead)
		assert.Equal(t, 3*3, st.ChunksWritten)
		assert.False(t, st.More)

		for _, g := range gpus {
			assert.Equal(t, before[g.UUID], readEverything(t, s, g.UUID), g.UUID)
		}
		again, err := s.Compact(ctx)
		require.NoError(t, err)
		assert.Zero(t, again.GPUs, "what is left unsealed is too little to merge")

		// New batches' small chunks are merged too, with the block that is not full: 30 new
		// chunks each, and the 952-sample blocks of GPUs 1 and 2 (GPU 0's three are full),
		// which become a full block and one of 528; GPU 0's 600 new samples a block of their own.
		writeTicks(t, s, "b", gpus, 10, 300, 60, 2)
		st, err = s.Compact(ctx)
		require.NoError(t, err)
		assert.Equal(t, 3, st.GPUs)
		assert.Equal(t, 3*30+2, st.ChunksRead)
		assert.Equal(t, 2+2+1, st.ChunksWritten)
		got := readEverything(t, s, gpus[2].UUID)
		assert.Len(t, got.asc, 3600)
		assert.Equal(t, before[gpus[2].UUID].asc, got.asc[:3000])
	})
}

// A scan takes several statements when it reads many chunks, and the compactor may rewrite
// them in between: the scan still returns each sample exactly once, in order.
func TestScanAcrossCompaction(t *testing.T) {
	for _, desc := range []bool{false, true} {
		t.Run(fmt.Sprintf("desc=%v", desc), func(t *testing.T) {
			bothStores(t, func(t *testing.T, s *sqlstore.Store) {
				ctx := context.Background()
				gpus := compactFleet(1)
				writeTicks(t, s, "a", gpus, 5, 0, 900, 1) // 900 chunks: an export reads them in rounds
				want := exportAll(t, s, telemetry.SampleQuery{GPU: gpus[0].UUID, Desc: desc})
				require.Len(t, want, 4500)

				var got []telemetry.Sample
				compacted := 0
				_, err := s.Samples(ctx, telemetry.SampleQuery{GPU: gpus[0].UUID, Desc: desc}, func(smp telemetry.Sample) error {
					if len(got) == 100 {
						st, err := s.Seal(ctx)
						require.NoError(t, err)
						compacted = st.ChunksRead
					}
					got = append(got, smp)
					return nil
				})
				require.NoError(t, err)
				assert.Equal(t, 900, compacted, "every chunk was rewritten into blocks during the scan")
				assert.Equal(t, want, got)
			})
		})
	}
}

// Once a window is over, a device's chunks in it become blocks; points arriving for it later
// reopen its block. Every read sees each sample once, before and after, whatever chunks
// hold them.
func TestSealingWindowsKeepsEverySample(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpus := compactFleet(2)
		writeTicks(t, s, "a", gpus, 10, 0, 2000, 3) // 5.5 hours: two windows over, a third open
		before := map[string]everything{}
		for _, g := range gpus {
			before[g.UUID] = readEverything(t, s, g.UUID)
		}
		chunks, err := s.CountRows(ctx, "chunks")
		require.NoError(t, err)

		// Each pass seals a device's oldest window over.
		var sealed int
		for range 3 {
			st, err := s.Compact(ctx)
			require.NoError(t, err)
			sealed += st.Sealed
		}
		assert.Equal(t, 2*2, sealed, "two windows of each device")
		blocks, err := s.CountRows(ctx, "chunks WHERE sealed")
		require.NoError(t, err)
		assert.Equal(t, int64(2*2), blocks, "a block a window: 720 ticks × 10 metrics fit one")
		after, err := s.CountRows(ctx, "chunks")
		require.NoError(t, err)
		assert.Less(t, after, chunks/2)
		for _, g := range gpus {
			assert.Equal(t, before[g.UUID], readEverything(t, s, g.UUID), g.UUID)
		}

		// A late write into the first window, some of it samples stored already.
		writeTicksShifted(t, s, "late", gpus[:1], 10, 100, 20, 20, 5*time.Second)
		writeTicks(t, s, "again", gpus[:1], 10, 110, 20, 20)
		late := readEverything(t, s, gpus[0].UUID)
		require.Len(t, late.asc, 20_000+200)
		st, err := s.Compact(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, st.Sealed, "the first window of the GPU written late is sealed again")
		assert.Equal(t, late, readEverything(t, s, gpus[0].UUID))
		blocks, err = s.CountRows(ctx, "chunks WHERE sealed")
		require.NoError(t, err)
		assert.Equal(t, int64(2*2), blocks)

		// Sealing everything leaves no head chunk, the open window's included.
		_, err = s.Seal(ctx)
		require.NoError(t, err)
		heads, err := s.CountRows(ctx, "chunks WHERE NOT sealed")
		require.NoError(t, err)
		assert.Zero(t, heads)
		assert.Equal(t, late, readEverything(t, s, gpus[0].UUID))
		assert.Equal(t, before[gpus[1].UUID], readEverything(t, s, gpus[1].UUID))
	})
}

// Chunks that all start at one instant (a GPU reporting hundreds of fields, each batch a few)
// give a scan no place to resume between them; it reads them in one larger round.
func TestScanOfChunksAtOneInstant(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpu := compactFleet(1)[0]
		for i := range 600 {
			_, err := s.WriteBatch(ctx, telemetry.Batch{ID: fmt.Sprint("f", i), GPUs: []telemetry.GPU{gpu}, Samples: []telemetry.Sample{
				{GPU: gpu.UUID, Metric: fmt.Sprintf("DCGM_FI_FIELD_%03d", i), Time: compactT0, Value: float64(i)},
			}})
			require.NoError(t, err)
		}
		all := exportAll(t, s, telemetry.SampleQuery{GPU: gpu.UUID})
		require.Len(t, all, 600)
		seen := map[string]bool{}
		for _, smp := range all {
			assert.False(t, seen[smp.Metric], smp.Metric)
			seen[smp.Metric] = true
		}
		st, err := s.Compact(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, st.ChunksWritten, "one block")
		assert.Equal(t, all, exportAll(t, s, telemetry.SampleQuery{GPU: gpu.UUID}))
	})
}

func TestConcurrentCompactorsShareTheWork(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpus := compactFleet(40)
		writeTicks(t, s, "a", gpus, 4, 0, 160, 2)
		before := readEverything(t, s, gpus[7].UUID)
		var mu sync.Mutex
		total := sqlstore.CompactStats{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				st, err := s.Compact(ctx)
				assert.NoError(t, err)
				mu.Lock()
				defer mu.Unlock()
				total.GPUs += st.GPUs
				total.ChunksRead += st.ChunksRead
			})
		}
		wg.Wait()
		assert.Equal(t, 40, total.GPUs, "each GPU compacted once")
		assert.Equal(t, 40*80, total.ChunksRead)
		assert.Equal(t, before, readEverything(t, s, gpus[7].UUID))
	})
}

func TestCompactorRunsUntilItsContextEnds(t *testing.T) {
	logs := make(records, 100)
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, sqlstoretest.SQLiteURL(t), sqlstore.Options{Logger: slog.New(logs)})
	require.NoError(t, err)
	defer s.Close()
	writeTicks(t, s, "a", compactFleet(2), 10, 0, 60, 2)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Compactor(ctx, 10*time.Millisecond) }()
	deadline := time.After(5 * time.Second)
	for compacted := false; !compacted; {
		select {
		case r := <-logs:
			if r.Message == "compacted chunks" {
				compacted = true
				attrs := map[string]string{}
				r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
				assert.Equal(t, "2", attrs["gpus"])
				assert.Equal(t, "60", attrs["read"])
			}
		case <-deadline:
			t.Fatal("the compactor did not compact")
		}
	}
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the compactor did not stop")
	}
}

// records is a slog.Handler handing records to the test.
type records chan slog.Record

func (r records) Enabled(context.Context, slog.Level) bool { return true }
func (r records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r records) WithGroup(string) slog.Handler            { return r }
func (r records) Handle(_ context.Context, rec slog.Record) error {
	select {
	case r <- rec:
	default: // the test stopped listening
	}
	return nil
}

// Chunks that all overlap one another (each batch brought one early and one late reading)
// make every round after the first begin with chunks that started before it; small pages by
// cursor still return every sample once, in order, both ways.
func TestPagesOverOverlappingChunks(t *testing.T) {
	bothStores(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		gpu := compactFleet(1)[0]
		for i := range 50 {
			at := compactT0.Add(time.Duration(i) * time.Second)
			_, err := s.WriteBatch(ctx, telemetry.Batch{ID: fmt.Sprint("o", i), GPUs: []telemetry.GPU{gpu}, Samples: []telemetry.Sample{
				{GPU: gpu.UUID, Metric: "DCGM_FI_DEV_GPU_UTIL", Time: at, Value: float64(i)},
				{GPU: gpu.UUID, Metric: "DCGM_FI_DEV_GPU_UTIL", Time: at.Add(10 * time.Minute), Value: float64(i + 100)},
			}})
			require.NoError(t, err)
		}
		for _, desc := range []bool{false, true} {
			want := exportAll(t, s, telemetry.SampleQuery{GPU: gpu.UUID, Desc: desc})
			require.Len(t, want, 100)
			for _, limit := range []int{1, 3, 7} {
				q := telemetry.SampleQuery{GPU: gpu.UUID, Desc: desc, Range: telemetry.TimeRange{Start: compactT0.Add(4 * time.Second)}}
				q.Page.Limit = limit
				got := pageAll(t, s, q)
				first := 4 // the window starts at the fifth early reading
				if desc {
					assert.Equal(t, want[:len(want)-first], got, "desc, limit %d", limit)
				} else {
					assert.Equal(t, want[first:], got, "asc, limit %d", limit)
				}
			}
		}
	})
}

// A device whose compaction lock another transaction holds — another collector's, or that
// of a connection cut short whose server process has not noticed yet — is waited for by
// Seal, not skipped: Seal promises every window sealed.
func TestSealWaitsForADeviceLockedElsewhere(t *testing.T) {
	ctx := context.Background()
	url := sqlstoretest.PostgresURL(t)
	s := open(t, url)
	gpus := compactFleet(2)
	writeTicks(t, s, "a", gpus, 3, 0, 3*360, 60)
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	var id int32
	require.NoError(t, tx.QueryRowContext(ctx, `SELECT id FROM gpus WHERE uuid = $1`, gpus[0].UUID).Scan(&id))
	_, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, sqlstore.CompactLock, id)
	require.NoError(t, err)
	released := time.AfterFunc(300*time.Millisecond, func() { _ = tx.Rollback() })
	defer released.Stop()
	_, err = s.Seal(ctx)
	require.NoError(t, err)
	heads, err := s.CountRows(ctx, "chunks_heads")
	require.NoError(t, err)
	assert.Zero(t, heads, "every head chunk sealed, the locked device's too")
}

// A backlog caught up (an import, a collector back after an outage) leaves chunks_heads as
// large as the backlog's head chunks were, though what the fleet keeps there after is a
// window's; compaction rewrites it down to its rows, the open window's head chunks kept.
func TestCompactionShrinksHeadsAfterABacklog(t *testing.T) {
	ctx := context.Background()
	s := open(t, sqlstoretest.PostgresURL(t))
	s.ShrinkHeadsOver(256 << 10)
	gpus := compactFleet(20)
	writeTicks(t, s, "backlog", gpus, 5, 0, 12*360, 60)
	backlog, err := s.TableBytes(ctx, "chunks_heads")
	require.NoError(t, err)
	require.Greater(t, backlog, int64(2<<20), "the head chunks of twelve hours")
	for {
		st, err := s.Compact(ctx)
		require.NoError(t, err)
		if st.GPUs == 0 {
			break
		}
	}
	after := shrunkBy(t, s, backlog/4)
	heads, err := s.CountRows(ctx, "chunks_heads")
	require.NoError(t, err)
	t.Logf("chunks_heads: %d kB with the backlog, %d kB caught up (%d head chunks of the open window)", backlog>>10, after>>10, heads)
	assert.Positive(t, heads, "the open window stays in head chunks")
	assert.Less(t, after, backlog/4, "rewritten down to the open window's head chunks")
	assert.Len(t, exportAll(t, s, telemetry.SampleQuery{GPU: gpus[3].UUID}), 5*12*360, "every sample kept")
}

// shrunkBy runs compaction passes, as a collector does, until chunks_heads takes at most
// limit bytes, or a few seconds have passed, and returns what it takes.
func shrunkBy(t *testing.T, s *sqlstore.Store, limit int64) int64 {
	t.Helper()
	var size int64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var err error
		size, err = s.TableBytes(context.Background(), "chunks_heads")
		require.NoError(t, err)
		if size <= limit || time.Now().After(deadline) {
			return size
		}
		_, err = s.Compact(context.Background())
		require.NoError(t, err)
	}
}

// Head chunks live apart from blocks on PostgreSQL (chunks_heads): what compaction frees
// there is reused by the next head chunks, and handed back to the disk once none is left, so
// that a store loaded and compacted takes its blocks' room, not every sample's passage
// through a head chunk.
func TestCompactedHeadsGiveTheirSpaceBack(t *testing.T) {
	ctx := context.Background()
	s := open(t, sqlstoretest.PostgresURL(t))
	s.ShrinkHeadsOver(64 << 10) // below it, the table's free space is left to later rows
	gpus := compactFleet(20)
	writeTicks(t, s, "a", gpus, 5, 0, 4*360, 6)
	heads, err := s.TableBytes(ctx, "chunks_heads")
	require.NoError(t, err)
	require.Greater(t, heads, int64(1<<20), "the head chunks of four hours")
	_, err = s.Seal(ctx)
	require.NoError(t, err)
	after := shrunkBy(t, s, 96<<10) // a pass finding the table busy (autovacuum) leaves it to the next
	blocks, err := s.TableBytes(ctx, "chunks_blocks")
	require.NoError(t, err)
	t.Logf("chunks_heads: %d kB loaded, %d kB sealed; chunks_blocks %d kB", heads>>10, after>>10, blocks>>10)
	assert.LessOrEqual(t, after, int64(96<<10), "emptied, then truncated: its indexes' first pages")
	assert.Less(t, blocks, heads/4, "the blocks take a fraction of it")
	assert.Equal(t, exportAll(t, s, telemetry.SampleQuery{GPU: gpus[3].UUID})[0].Time, compactT0, "the samples are in blocks")
}
