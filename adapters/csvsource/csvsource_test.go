package csvsource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/csvsource"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

const bundled = "../../app/data/dcgm_metrics_20250718_134233.csv"

func scanAll(t *testing.T, src *csvsource.Source) ([]telemetry.Reading, telemetry.ScanStats) {
	t.Helper()
	var got []telemetry.Reading
	stats, err := src.Scan(context.Background(), func(r telemetry.Reading) error {
		got = append(got, r)
		return nil
	})
	require.NoError(t, err)
	return got, stats
}

func TestBundledFile(t *testing.T) {
	readings, stats := scanAll(t, csvsource.File(bundled, csvsource.Options{KeepTimestamps: true}))
	assert.Equal(t, telemetry.ScanStats{Rows: 2470}, stats)
	require.Len(t, readings, 2470)

	gpus, hosts, times := map[string]telemetry.GPU{}, map[string]bool{}, map[time.Time]bool{}
	for _, r := range readings {
		require.Equal(t, r.GPU.UUID, r.Sample.GPU)
		gpus[r.GPU.UUID] = r.GPU
		hosts[r.GPU.Hostname] = true
		times[r.Sample.Time] = true
	}
	assert.Len(t, gpus, 247)
	assert.Len(t, hosts, 31)
	assert.Len(t, times, 4)

	first := readings[0]
	assert.Equal(t, telemetry.GPU{
		UUID: "GPU-5fd4f087-86f3-7a43-b711-4771313afc50", Hostname: "mtv5-dgx1-hgpu-031", Index: 0,
		Device: "nvidia0", ModelName: "NVIDIA H100 80GB HBM3", DriverVersion: "535.129.03",
		Labels: map[string]string{"instance": "mtv5-dgx1-hgpu-031:9400", "job": "dgx_dcgm_exporter"},
	}, first.GPU)
	assert.Equal(t, "DCGM_FI_DEV_GPU_UTIL", first.Sample.Metric)
	assert.Equal(t, time.Date(2025, 7, 18, 20, 42, 34, 0, time.UTC), first.Sample.Time)
	assert.Equal(t, 0.0, first.Sample.Value)
	assert.Equal(t, 100.0, readings[1].Sample.Value)
}

func TestColumnsByNameAnyOrderBOMAndCRLF(t *testing.T) {
	doc := "\ufeffValue , HOSTNAME,uuid,metric_name,timestamp,gpu_id\r\n" +
		" 42.5 , host-a ,GPU-1, DCGM_FI_DEV_POWER_USAGE ,2025-07-18T20:42:34.5Z,3\r\n"
	readings, stats := scanAll(t, csvsource.Bytes("doc", []byte(doc), csvsource.Options{KeepTimestamps: true}))
	require.Len(t, readings, 1)
	assert.Equal(t, telemetry.ScanStats{Rows: 1}, stats)
	r := readings[0]
	assert.Equal(t, telemetry.GPU{UUID: "GPU-1", Hostname: "host-a", Index: 3}, r.GPU)
	assert.Equal(t, telemetry.Sample{
		GPU: "GPU-1", Metric: "DCGM_FI_DEV_POWER_USAGE", Value: 42.5,
		Time: time.Date(2025, 7, 18, 20, 42, 34, 5e8, time.UTC),
	}, r.Sample)
}

func TestRejectsAndBlanks(t *testing.T) {
	head := "timestamp,metric_name,gpu_id,uuid,Hostname,value\n"
	rows := []struct {
		line, reject string // reject: a fragment of the logged reason; "" = accepted; "blank"
	}{
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,1", ""},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h", "has 5 fields"},
		{"2025-07-18T20:42:34Z,M,0,,h,1", "uuid is empty"},
		{"2025-07-18T20:42:34Z,,0,GPU-1,h,1", "metric_name is empty"},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,abc", "not a number"},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,NaN", "not a finite number"},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,-Inf", "not a finite number"},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,", "value is empty"},
		{"yesterday,M,0,GPU-1,h,1", "timestamp"},
		{"0001-01-01T00:00:00Z,M,0,GPU-1,h,1", "timestamp: is missing"},
		{"1000-01-01T00:00:00Z,M,0,GPU-1,h,1", "timestamp: 1000-01-01T00:00:00Z is outside the range kept (1677-09-21 to 2262-04-11)"},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,\"1", "unterminated quoted field"},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,\"1\"x", "text after a closing quote"},
		{"2025-07-18T20:42:34Z,\"M,\"\"2\"\"\",0,GPU-1,h, \"7\" ", ""},
		// DCGM's sentinels, matched exactly and by the field's type, as dcgm-exporter does:
		// an unknown metric against every type's, a DCGM field against its own type's.
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,2147483632", "blank"},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,2147483635", "blank"},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,9223372036854775792", "blank"},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,140737488355328.0", "blank"},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,2147483631", ""},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,2147483647", ""},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,200000000000000", ""},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,1e400", "not a finite number"},
		{"2025-07-18T20:42:34Z,DCGM_FI_DEV_GPU_TEMP,0,GPU-1,h,2147483633", "blank"},
		{"2025-07-18T20:42:34Z,DCGM_FI_DEV_GPU_TEMP,0,GPU-1,h,140737488355328", ""},
		{"2025-07-18T20:42:34Z,DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL,0,GPU-1,h,140737488355329", ""},
		{"2025-07-18T20:42:34Z,DCGM_FI_PROF_SM_ACTIVE,0,GPU-1,h,140737488355330", "blank"},
		{"2025-07-18T20:42:34Z,DCGM_FI_DEV_POWER_USAGE,0,GPU-1,h,2147483632", ""},
		// Text the store cannot keep rejects its row, never its batch.
		{"2025-07-18T20:42:34Z,M,0,GPU-\x001,h,1", "uuid: holds control character U+0000"},
		{"2025-07-18T20:42:34Z,M\xff,0,GPU-1,h,1", "metric_name: is not valid UTF-8"},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h\x1b[31m,1", "hostname: holds control character U+001B"},
		{"2025-07-18T20:42:34Z,M,0,GPU-" + strings.Repeat("f", 200) + ",h,1", "uuid: is 204 bytes long, more than 128"},
		{"2025-07-18T20:42:34Z,M,0,GPU-1,h,4", ""},
		{"1752871354,M,x,GPU-2,h,-3.5", ""},
	}
	var doc strings.Builder
	doc.WriteString(head)
	wantRejectLines, wantAccepted, wantBlank := map[int]string{}, 0, 0
	for i, r := range rows {
		doc.WriteString(r.line + "\n")
		switch r.reject {
		case "":
			wantAccepted++
		case "blank":
			wantBlank++
		default:
			wantRejectLines[i+2] = r.reject
		}
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	src := csvsource.Bytes("dirty.csv", []byte(doc.String()), csvsource.Options{KeepTimestamps: true, Logger: logger})
	readings, stats := scanAll(t, src)

	assert.Len(t, readings, wantAccepted)
	assert.Equal(t, telemetry.ScanStats{Rows: int64(len(rows)), Rejected: int64(len(wantRejectLines)), Blank: int64(wantBlank),
		RejectedBy: map[string]int64{"fields": 1, "hostname": 1, "metric_name": 2, "quote": 2, "timestamp": 3, "uuid": 3, "value": 5}}, stats)
	assert.Equal(t, "value=5 timestamp=3 uuid=3 metric_name=2 quote=2 fields=1 hostname=1", stats.Reasons())
	logged := map[int]string{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var entry struct {
			File   string
			Line   int
			Reason string
		}
		require.NoError(t, json.Unmarshal([]byte(line), &entry))
		assert.Equal(t, "dirty.csv", entry.File)
		logged[entry.Line] = entry.Reason
	}
	require.Len(t, logged, len(wantRejectLines))
	for line, reason := range wantRejectLines {
		assert.Contains(t, logged[line], reason, "line %d", line)
	}
	assert.Equal(t, `M,"2"`, readings[1].Sample.Metric, "quoted field with comma and doubled quotes")
	assert.Equal(t, 7.0, readings[1].Sample.Value)
	last := readings[len(readings)-1]
	assert.Equal(t, -1, last.GPU.Index, "a gpu_id that is not a number is unknown, not a reject")
	assert.Equal(t, time.Unix(1752871354, 0).UTC(), last.Sample.Time)
}

func TestTruncatedRowSpoilsOnlyItself(t *testing.T) {
	doc := "metric_name,uuid,value\n" +
		"M,\"GPU-1,1\n" + // truncated inside a quoted field
		"M,GPU-2,2\n" +
		"\n" + // blank lines are not rows
		"M,GPU-3,3"
	readings, stats := scanAll(t, csvsource.Bytes("doc", []byte(doc), csvsource.Options{}))
	assert.Equal(t, telemetry.ScanStats{Rows: 3, Rejected: 1, RejectedBy: map[string]int64{"quote": 1}}, stats)
	require.Len(t, readings, 2)
	assert.Equal(t, "GPU-2", readings[0].GPU.UUID)
	assert.Equal(t, "GPU-3", readings[1].GPU.UUID, "a last line without a line end counts")
}

// RFC 4180: a quoted field may hold line breaks, commas and doubled quotes. A quote that
// never closes spoils its own row only, however many rows come after it.
func TestQuotedLineBreaks(t *testing.T) {
	doc := "metric_name,uuid,value,labels_raw\n" +
		"M,GPU-1,1,\"instance=\"\"h:9400\"\",\njob=\"\"dcgm\"\"\"\n" + // one record on two lines
		"M,GPU-2,2,\r\n" +
		"M,\"GPU-3,3,\n" + // never closes: joined lines make no record of 4 fields
		"M,GPU-4,4,\"pod=\"\"a\"\"\"\n" +
		"M,GPU-5,5,\"pod=\"\"b\nc\"\"\"\n" + // a record, but a pod name holds no line break
		"M,GPU-6,6,\"job=\"\"x\"\",\r\n err_code=\"\"0\"\"\"\n"
	var logs bytes.Buffer
	src := csvsource.Bytes("doc", []byte(doc), csvsource.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	readings, stats := scanAll(t, src)
	assert.Equal(t, telemetry.ScanStats{Rows: 6, Rejected: 2, RejectedBy: map[string]int64{"quote": 1, "pod": 1}}, stats)
	var uuids []string
	for _, r := range readings {
		uuids = append(uuids, r.GPU.UUID)
	}
	require.Equal(t, []string{"GPU-1", "GPU-2", "GPU-4", "GPU-6"}, uuids)
	assert.Equal(t, map[string]string{"instance": "h:9400", "job": "dcgm"}, readings[0].GPU.Labels, "labels across the line break")
	assert.Equal(t, map[string]string{"job": "x", "M:err_code": "0"}, readings[3].GPU.Labels, "err_code is the family's own")
	assert.Contains(t, logs.String(), `"line":5,"reason":"unterminated quoted field"`, "the unclosed quote is reported at its own line")
	assert.Contains(t, logs.String(), `"line":7,"reason":"pod: holds control character U+000A`)

	// A quote that never closes before a line too long: both rows rejected, in their turn.
	doc = "metric_name,uuid,value\nM,\"GPU-0,0\n" + "M,GPU-1," + strings.Repeat("1", 1<<20+1) + "\nM,GPU-2,2\n"
	readings, stats = scanAll(t, csvsource.Bytes("long-line", []byte(doc), csvsource.Options{}))
	assert.Equal(t, telemetry.ScanStats{Rows: 3, Rejected: 2, RejectedBy: map[string]int64{"quote": 1, "line_length": 1}}, stats)
	require.Len(t, readings, 1)
	assert.Equal(t, "GPU-2", readings[0].GPU.UUID)

	// A quote that never closes, then more rows than a record may span: all of them read.
	var long strings.Builder
	long.WriteString("metric_name,uuid,value\nM,\"GPU-0,0\n")
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&long, "M,GPU-%d,%d\n", i, i)
	}
	readings, stats = scanAll(t, csvsource.Bytes("long", []byte(long.String()), csvsource.Options{}))
	assert.Equal(t, telemetry.ScanStats{Rows: 101, Rejected: 1, RejectedBy: map[string]int64{"quote": 1}}, stats)
	assert.Len(t, readings, 100)
}

func TestTimestampsIgnoredUnlessKept(t *testing.T) {
	doc := "metric_name,uuid,value,timestamp\nM,GPU-1,1,garbage\n"
	readings, stats := scanAll(t, csvsource.Bytes("doc", []byte(doc), csvsource.Options{}))
	require.Len(t, readings, 1)
	assert.Zero(t, stats.Rejected)
	assert.True(t, readings[0].Sample.Time.IsZero())
}

func TestWholeFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.csv")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	foreign := filepath.Join(dir, "foreign.csv")
	require.NoError(t, os.WriteFile(foreign, []byte("a,b,c\n1,2,3\n"), 0o644))

	tests := []struct {
		name, path, want string
		keep             bool
	}{
		{"missing", filepath.Join(dir, "nope.csv"), "nope.csv: no such file or directory", false},
		{"empty", empty, "empty.csv: file is empty", false},
		{"foreign", foreign, "lacks required column(s) metric_name, uuid, value", false},
		{"no timestamp", foreign, "lacks required column(s) timestamp, metric_name", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := csvsource.File(tt.path, csvsource.Options{KeepTimestamps: tt.keep})
			err := src.Check()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "\n")
			_, err = src.Scan(context.Background(), func(telemetry.Reading) error { return nil })
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestScanStopsOnYieldErrorAndCancel(t *testing.T) {
	src := csvsource.File(bundled, csvsource.Options{})
	boom := errors.New("boom")
	n := 0
	_, err := src.Scan(context.Background(), func(telemetry.Reading) error {
		n++
		if n == 10 {
			return boom
		}
		return nil
	})
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 10, n)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = src.Scan(ctx, func(telemetry.Reading) error { return nil })
	assert.ErrorIs(t, err, context.Canceled)
}

func TestRescanStartsOver(t *testing.T) {
	src := csvsource.File(bundled, csvsource.Options{})
	a, _ := scanAll(t, src)
	b, _ := scanAll(t, src)
	assert.Equal(t, a, b)
}

func BenchmarkScan(b *testing.B) {
	data, err := os.ReadFile(bundled)
	require.NoError(b, err)
	src := csvsource.Bytes("bench", data, csvsource.Options{KeepTimestamps: true})
	b.ReportAllocs()
	b.ResetTimer()
	rows := int64(0)
	for b.Loop() {
		stats, err := src.Scan(context.Background(), func(telemetry.Reading) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		rows += stats.Rows
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

func TestKeepSelectsGPUsBeforeParsing(t *testing.T) {
	all, _ := scanAll(t, csvsource.File(bundled, csvsource.Options{}))
	want := 0
	for _, r := range all {
		if strings.HasSuffix(r.GPU.UUID, "0") {
			want++
		}
	}
	require.Positive(t, want)
	data := "timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw\n" +
		"x,M,0,nvidia0,GPU-skipped-1,m,h,,,,not-a-number,\n" // malformed, but not this streamer's
	raw, err := os.ReadFile(bundled)
	require.NoError(t, err)
	_, rest, _ := strings.Cut(string(raw), "\n")
	keep := func(uuid string) bool { return strings.HasSuffix(uuid, "0") }
	got, stats := scanAll(t, csvsource.Bytes("x.csv", []byte(data+rest), csvsource.Options{Keep: keep}))
	assert.Len(t, got, want)
	for _, r := range got {
		assert.True(t, keep(r.GPU.UUID), r.GPU.UUID)
	}
	assert.Equal(t, telemetry.ScanStats{Rows: 2471}, stats, "skipped rows are read, never rejected")
}

func TestBytesParsedOnceThenReplayed(t *testing.T) {
	raw, err := os.ReadFile(bundled)
	require.NoError(t, err)
	dirty := string(raw) + "x,M,0,nvidia0,GPU-bad,m,h,,,,not-a-number,\n"
	var logs bytes.Buffer
	src := csvsource.Bytes("bundled", []byte(dirty), csvsource.Options{KeepTimestamps: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	first, stats1 := scanAll(t, src)
	second, stats2 := scanAll(t, src)
	assert.Equal(t, telemetry.ScanStats{Rows: 2471, Rejected: 1, RejectedBy: map[string]int64{"value": 1}}, stats1)
	assert.Equal(t, stats1, stats2, "a replay reports the same counts")
	assert.Equal(t, first, second)
	assert.Equal(t, 1, strings.Count(logs.String(), "csv row rejected"), "rejected rows are logged once")

	n := 0
	stop := errors.New("stop")
	_, err = src.Scan(context.Background(), func(telemetry.Reading) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	})
	assert.ErrorIs(t, err, stop, "a replay stops when told")
}

func TestFilesAreReadEachPass(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.csv")
	head := "timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw\n"
	row := "2025-07-18T20:42:34Z,M,0,nvidia0,GPU-a,m,h,,,,1,\n"
	require.NoError(t, os.WriteFile(path, []byte(head+row), 0o644))
	src := csvsource.File(path, csvsource.Options{})
	got, _ := scanAll(t, src)
	require.Len(t, got, 1)
	require.NoError(t, os.WriteFile(path, []byte(head+row+row), 0o644))
	got, _ = scanAll(t, src)
	assert.Len(t, got, 2, "a file may change between passes")
}

// FuzzScan: no input makes the reader panic; every data row is yielded, rejected or counted
// blank; what is yielded names a GPU and a metric and has a finite value. `go test -fuzz
// FuzzScan ./adapters/csvsource` explores further.
func FuzzScan(f *testing.F) {
	header := "timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw\n"
	f.Add(header + `2025-07-18T20:42:34Z,DCGM_FI_DEV_GPU_UTIL,0,nvidia0,GPU-1,H100,host-1,,,,87,"a=""b"""` + "\n")
	f.Add(header + "2025-07-18T20:42:34Z,DCGM_FI_DEV_GPU_TEMP,1,nvidia1,GPU-2,H100,host-1,c,p,ns,1e400,\n\n\"unterminated\n")
	f.Add("\ufeffvalue,uuid,metric_name\r\n1,GPU-1,M\r\nNaN,GPU-1,M\r\n")
	f.Fuzz(func(t *testing.T, doc string) {
		var yielded int64
		stats, err := csvsource.Bytes("fuzz.csv", []byte(doc), csvsource.Options{KeepTimestamps: true}).Scan(context.Background(), func(r telemetry.Reading) error {
			yielded++
			require.NotEmpty(t, r.GPU.UUID)
			require.NotEmpty(t, r.Sample.Metric)
			require.False(t, math.IsNaN(r.Sample.Value) || math.IsInf(r.Sample.Value, 0), "value %v", r.Sample.Value)
			return nil
		})
		if err != nil {
			return // a file-level error: no header, or no usable columns
		}
		require.Equal(t, stats.Rows, yielded+stats.Rejected+stats.Blank, "%+v, %d yielded", stats, yielded)
	})
}

// With the file's own timestamps, a row stamped too far ahead of the clock is rejected and
// counted as such; a clock a little ahead is let through.
func TestRowsFromTheFutureRejected(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	doc := "timestamp,metric_name,uuid,value\n" +
		"2026-12-06T11:59:00Z,M,GPU-1,1\n" +
		"2262-04-11T23:47:16Z,M,GPU-1,2\n" +
		"2026-12-06T12:05:00Z,M,GPU-1,3\n" +
		"2026-12-06T12:11:00Z,M,GPU-1,4\n"
	opts := csvsource.Options{KeepTimestamps: true, Now: func() time.Time { return now }}
	readings, stats := scanAll(t, csvsource.Bytes("doc", []byte(doc), opts))
	require.Len(t, readings, 2)
	assert.Equal(t, []float64{1, 3}, []float64{readings[0].Sample.Value, readings[1].Sample.Value})
	assert.Equal(t, telemetry.ScanStats{Rows: 4, Rejected: 2, RejectedBy: map[string]int64{"future": 2}}, stats)

	opts.KeepTimestamps = false // the streamer stamps the rows anew: nothing to check
	readings, _ = scanAll(t, csvsource.Bytes("doc", []byte(doc), opts))
	assert.Len(t, readings, 4)
}
