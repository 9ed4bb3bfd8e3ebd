package bench

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/csvsource"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/dcgmsim"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// BenchmarkChunkLayouts measures candidate on-disk layouts of series chunks in PostgreSQL
// on the data the storage engine's target is set on: the bundled fleet as the simulator
// moves it (247 GPUs, 10 metrics), scraped every 10 s for two hours — 1,778,400 samples in
// 2,470 series. For each layout it writes one chunk per series per span into a table of
// its own and reports the table's whole size (heap, TOAST, indexes) per sample after
// VACUUM. Run it with `TELEMETRY_BENCH_LAYOUTS=1 go test -run '^$' -bench ChunkLayouts ./app`;
// TELEMETRY_BENCH_LAYOUTS=noisy adds noise to the simulator's values (which repeat every
// five minutes), as a real fleet's would not repeat.
func BenchmarkChunkLayouts(b *testing.B) {
	mode := os.Getenv("TELEMETRY_BENCH_LAYOUTS")
	if mode == "" {
		b.Skip("set TELEMETRY_BENCH_LAYOUTS=1 (or noisy)")
	}
	series := simulatedSeries(b, time.Now(), 2*time.Hour, 10*time.Second)
	if mode == "noisy" {
		addNoise(series)
	}
	total := 0
	for _, s := range series {
		total += len(s.ts)
	}
	b.Logf("%d series, %d samples", len(series), total)
	dbURL := sqlstoretest.PostgresURL(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, strings.Replace(dbURL, "sqlite:", "", 1))
	require.NoError(b, err)
	defer conn.Close(ctx)

	type layout struct {
		name, table string
		rows        func(s simSeries, from, to int) []any
	}
	xor := func(newChunk func() chunkenc.Chunk) func(s simSeries, from, to int) []any {
		return func(s simSeries, from, to int) []any {
			c := newChunk()
			app, err := c.Appender()
			require.NoError(b, err)
			for i := from; i < to; i++ {
				app.Append(0, s.ts[i], s.vs[i])
			}
			return []any{s.id, s.ts[from], s.ts[to-1], int16(to - from), c.Bytes()}
		}
	}
	arrays := func(s simSeries, from, to int) []any {
		deltas := make([]int32, to-from)
		for i := from + 1; i < to; i++ {
			deltas[i-from] = int32(s.ts[i] - s.ts[i-1])
		}
		return []any{s.id, s.ts[from], s.ts[to-1], int16(to - from), deltas, s.vs[from:to]}
	}
	// Whole-number series (most DCGM fields) as deltas of their values; others as floats.
	intDeltas := func(s simSeries, from, to int) []any {
		r := arrays(s, from, to)
		whole := make([]int64, 0, to-from)
		prev := 0.0
		for _, v := range s.vs[from:to] {
			if v != float64(int64(v)) {
				return append(r[:5], nil, r[5])
			}
			whole = append(whole, int64(v-prev))
			prev = v
		}
		return append(r[:5], whole, nil)
	}
	// report COPYs a layout's rows into its table and prints what the table takes, whole
	// (heap, TOAST, indexes), after VACUUM.
	report := func(name, table string, cols []string, rows [][]any, perRow, payload int) {
		_, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		require.NoError(b, err)
		_, err = conn.Exec(ctx, "VACUUM ANALYZE "+table)
		require.NoError(b, err)
		var size int64
		require.NoError(b, conn.QueryRow(ctx, `SELECT pg_total_relation_size($1)`, table).Scan(&size))
		fmt.Printf("| %s | %d | %.2f | %.2f |\n", name, perRow, float64(size)/float64(total), float64(payload)/float64(total))
	}
	xorTable := `(series_id int4, min_ts int8, max_ts int8, samples int2, data bytea, PRIMARY KEY (series_id, min_ts))`
	layouts := []layout{
		{"XOR (tsdb/chunkenc)", `CREATE TABLE %s ` + xorTable, xor(func() chunkenc.Chunk { return chunkenc.NewXORChunk() })},
		{"XOR2 (tsdb/chunkenc)", `CREATE TABLE %s ` + xorTable, xor(func() chunkenc.Chunk { return chunkenc.NewXOR2Chunk() })},
		{"XOR, lz4", `CREATE TABLE %s (series_id int4, min_ts int8, max_ts int8, samples int2, data bytea COMPRESSION lz4,
			PRIMARY KEY (series_id, min_ts))`, xor(func() chunkenc.Chunk { return chunkenc.NewXORChunk() })},
		{"int4[] time deltas + float8[] values, lz4", `CREATE TABLE %s (series_id int4, min_ts int8, max_ts int8, samples int2,
			dt int4[] COMPRESSION lz4, v float8[] COMPRESSION lz4, PRIMARY KEY (series_id, min_ts))`, arrays},
		{"int4[] time deltas + float8[] values, pglz", `CREATE TABLE %s (series_id int4, min_ts int8, max_ts int8, samples int2,
			dt int4[] COMPRESSION pglz, v float8[] COMPRESSION pglz, PRIMARY KEY (series_id, min_ts))`, arrays},
		{"int4[] time deltas + int8[] value deltas (whole series) or float8[], lz4", `CREATE TABLE %s (series_id int4, min_ts int8, max_ts int8, samples int2,
			dt int4[] COMPRESSION lz4, dv int8[] COMPRESSION lz4, v float8[] COMPRESSION lz4, PRIMARY KEY (series_id, min_ts))`, intDeltas},
	}
	fmt.Printf("\n| layout, %d samples (%s) | samples a chunk | bytes a sample in PostgreSQL | payload bytes a sample |\n|---|---|---|---|\n", total, map[bool]string{true: "with noise", false: "the simulator's"}[mode == "noisy"])
	for li, l := range layouts {
		for _, span := range []int{120, 720} {
			table := fmt.Sprintf("layout_%d_%d", li, span)
			_, err := conn.Exec(ctx, fmt.Sprintf(l.table, table))
			require.NoError(b, err)
			var rows [][]any
			payload := 0
			for _, s := range series {
				for from := 0; from < len(s.ts); from += span {
					r := l.rows(s, from, min(from+span, len(s.ts)))
					for _, col := range r[4:] {
						switch v := col.(type) {
						case []byte:
							payload += len(v)
						case []int32:
							payload += 4 * len(v)
						case []float64:
							payload += 8 * len(v)
						case []int64:
							payload += 8 * len(v)
						}
					}
					rows = append(rows, r)
				}
			}
			cols := []string{"series_id", "min_ts", "max_ts", "samples", "data"}
			switch len(rows[0]) {
			case 6:
				cols = []string{"series_id", "min_ts", "max_ts", "samples", "dt", "v"}
			case 7:
				cols = []string{"series_id", "min_ts", "max_ts", "samples", "dt", "dv", "v"}
			}
			report(l.name, table, cols, rows, span, payload)
		}
	}
	// The engine's blocks: one device's series a row (as the store keeps them), and for
	// comparison one series a row, each compressed by PostgreSQL or not at all.
	byDevice := map[string][]engine.Point{}
	var oneSeries [][]engine.Point
	for _, s := range series {
		key := string(s.labels["UUID"]) + "/" + string(s.labels["GPU_I_ID"])
		var pts []engine.Point
		for i := range s.ts {
			pts = append(pts, engine.Point{TS: s.ts[i] * 1000, Metric: s.id, Value: s.vs[i]})
		}
		byDevice[key] = append(byDevice[key], pts...)
		oneSeries = append(oneSeries, pts)
	}
	devices := make([][]engine.Point, 0, len(byDevice))
	for _, pts := range byDevice {
		devices = append(devices, pts)
	}
	for _, l := range []struct {
		name    string
		groups  [][]engine.Point
		storage string
	}{
		{"engine blocks, a device's series a row, pglz", devices, "SET STORAGE MAIN, ALTER data SET COMPRESSION pglz"},
		{"engine blocks, a device's series a row, lz4", devices, "SET STORAGE MAIN, ALTER data SET COMPRESSION lz4"},
		{"engine blocks, a device's series a row, uncompressed", devices, "SET STORAGE EXTERNAL"},
		{"engine blocks, one series a row, pglz", oneSeries, "SET STORAGE MAIN, ALTER data SET COMPRESSION pglz"},
	} {
		table := fmt.Sprintf("layout_blocks_%d", len(l.storage)+len(l.groups))
		_, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (device_id int4, min_ts int8, max_ts int8, samples int4, data bytea,
			PRIMARY KEY (device_id, min_ts)); ALTER TABLE %[1]s ALTER data %s`, table, l.storage))
		require.NoError(b, err)
		var rows [][]any
		payload, perRow := 0, 0
		for d, pts := range l.groups {
			w := engine.WindowOf(pts[0].TS)
			w.End = w.Start + 3*engine.BlockSpan.Microseconds() // all two hours in one block
			chunks, _, _ := engine.Seal(int32(d), w, slices.Clone(pts))
			for _, c := range chunks {
				payload += len(c.Data)
				perRow = c.Samples
				rows = append(rows, []any{c.Device, c.MinTS, c.MaxTS, c.Samples, c.Data})
			}
		}
		report(l.name, table, []string{"device_id", "min_ts", "max_ts", "samples", "data"}, rows, perRow, payload)
	}
	if bin, err := exec.LookPath("victoria-metrics"); err == nil {
		byDir := victoriaMetricsBytes(b, bin, series, int64(total))
		perSample := func(n int64) float64 { return float64(n) / float64(total) }
		fmt.Printf("| VictoriaMetrics (Debian's %s) after a forced merge: samples (data/) and index (indexdb/) | | %.2f | |\n",
			victoriaMetricsVersion(bin), perSample(byDir["data"]+byDir["indexdb"]))
		fmt.Printf("| VictoriaMetrics, samples alone (data/) | | %.2f | |\n", perSample(byDir["data"]))
	}
}

// victoriaMetricsBytes remote-writes the series to a VictoriaMetrics of its own and returns
// the sizes of the top directories of its storage (data, indexdb, cache, …) once every
// sample is queryable, its parts merged and the server stopped.
func victoriaMetricsBytes(b *testing.B, bin string, series []simSeries, total int64) map[string]int64 {
	vm := startVictoriaMetrics(b, bin)
	var payloads [][]byte
	var wr prompb.WriteRequest
	flush := func() {
		payloads = append(payloads, apptest.RemoteWriteBodyOf(b, &wr))
		wr.Timeseries = wr.Timeseries[:0]
	}
	for _, s := range series {
		ts := prompb.TimeSeries{}
		for name, value := range s.labels {
			ts.Labels = append(ts.Labels, prompb.Label{Name: string(name), Value: string(value)})
		}
		sort.Slice(ts.Labels, func(i, j int) bool { return ts.Labels[i].Name < ts.Labels[j].Name })
		for i := range s.ts {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: s.ts[i], Value: s.vs[i]})
		}
		wr.Timeseries = append(wr.Timeseries, ts)
		if len(wr.Timeseries) == 10 {
			flush()
		}
	}
	if len(wr.Timeseries) > 0 {
		flush()
	}
	sendAll(b, vm.base+"/api/v1/write", payloads)
	require.Eventually(b, func() bool {
		n, err := vm.count()
		return err == nil && n >= total
	}, 2*time.Minute, 500*time.Millisecond, "VictoriaMetrics holds every sample")
	return vm.mergedSizes(b)
}

// mergedSizes merges VictoriaMetrics' parts, stops it and returns the sizes of the top
// directories of its storage (data, indexdb, cache, …).
func (vm *victoriaMetrics) mergedSizes(b *testing.B) map[string]int64 {
	for _, path := range []string{"/internal/force_flush", "/internal/force_merge"} {
		resp, err := http.Get(vm.base + path)
		require.NoError(b, err)
		resp.Body.Close()
	}
	time.Sleep(5 * time.Second) // the merge runs in the background
	vm.stop()                   // a clean stop writes what is in memory out
	byDir := map[string]int64{}
	require.NoError(b, filepath.WalkDir(vm.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				rel, _ := filepath.Rel(vm.dataDir, path)
				top, _, _ := strings.Cut(rel, string(filepath.Separator))
				byDir[top] += info.Size()
			}
		}
		return err
	}))
	b.Logf("VictoriaMetrics' storage by directory: %v", byDir)
	return byDir
}

// addNoise perturbs every value as a live GPU's readings move: whole-number series (temperatures,
// clocks, percentages, memory) by a whole ±2 % random walk step, the others (power, ratios)
// by 1 % of their value, rounded as DCGM reports them (power to mW, ratios to 1e-6).
func addNoise(series []simSeries) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range series {
		whole := true
		for _, v := range s.vs {
			whole = whole && v == math.Trunc(v)
		}
		drift := 0.0
		for i, v := range s.vs {
			if whole {
				drift += math.Round(rng.NormFloat64() * math.Max(1, math.Abs(v)*0.02) / 4)
				s.vs[i] = math.Max(0, v+drift)
				continue
			}
			n := v * (1 + rng.NormFloat64()*0.01)
			if math.Abs(v) >= 1 {
				s.vs[i] = math.Round(n*1000) / 1000
			} else {
				s.vs[i] = math.Round(n*1e6) / 1e6
			}
		}
	}
}

// simSeries is one simulated series: its samples' times (ms) and values.
type simSeries struct {
	id     int32
	labels model.Metric
	ts     []int64
	vs     []float64
}

// simulatedSeries scrapes the simulated bundled fleet every step over span, ending at end.
func simulatedSeries(b testing.TB, end time.Time, span, step time.Duration) []simSeries {
	return simulatedFleet(b, 0, end, span, step)
}

// simulatedFleet is simulatedSeries of the bundled fleet's first gpus GPUs (all: 0).
func simulatedFleet(b testing.TB, gpus int, end time.Time, span, step time.Duration) []simSeries {
	var readings []telemetry.Reading
	seen := map[string]bool{}
	_, err := csvsource.Bytes(apptest.BundledCSVName, apptest.BundledCSV, csvsource.Options{}).Scan(context.Background(), func(r telemetry.Reading) error {
		if !seen[r.GPU.UUID] && gpus > 0 && len(seen) == gpus {
			return nil
		}
		seen[r.GPU.UUID] = true
		readings = append(readings, r)
		return nil
	})
	require.NoError(b, err)
	var now time.Time
	fleet := dcgmsim.New(readings, dcgmsim.Options{Now: func() time.Time { return now }})
	byKey := map[string]*simSeries{}
	start := end.Truncate(step).Add(-span)
	for at := start; at.Before(start.Add(span)); at = at.Add(step) {
		now = at
		for _, host := range fleet.Hosts() {
			rec := httptest.NewRecorder()
			fleet.Handler(host).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			dec := expfmt.SampleDecoder{Dec: expfmt.NewDecoder(rec.Body, expfmt.NewFormat(expfmt.TypeTextPlain)),
				Opts: &expfmt.DecodeOptions{Timestamp: model.TimeFromUnixNano(at.UnixNano())}}
			for {
				var vec model.Vector
				if err := dec.Decode(&vec); err != nil {
					break
				}
				for _, smp := range vec {
					key := smp.Metric.String()
					s := byKey[key]
					if s == nil {
						s = &simSeries{labels: smp.Metric}
						byKey[key] = s
					}
					s.ts = append(s.ts, int64(smp.Timestamp))
					s.vs = append(s.vs, float64(smp.Value))
				}
			}
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]simSeries, len(keys))
	for i, k := range keys {
		out[i] = *byKey[k]
		out[i].id = int32(i + 1)
	}
	return out
}
