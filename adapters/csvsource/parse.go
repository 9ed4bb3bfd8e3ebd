package csvsource

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// errBlank marks a value that is one of DCGM's "blank" sentinels: the field is not supported
// or has no data yet. Such rows are skipped and counted apart from malformed ones.
var errBlank = errors.New("blank value")

// DCGM's blank sentinels (dcgm_structs.h): int32 values from DCGM_INT32_BLANK up, int64
// values from DCGM_INT64_BLANK up and floats from DCGM_FP64_BLANK up.
const (
	int32BlankLow = 0x7ffffff0
	int32BlankTop = 0x7fffffff
	fp64Blank     = 140737488355328.0 // 2^47; every int64 blank lies above it too
)

// parser turns records into readings. It interns GPU metadata and metric names so that a
// reading does not keep its whole CSV line (labels_raw makes lines long) alive in memory,
// and caches the last timestamp parsed, since rows come in groups sharing one timestamp.
type parser struct {
	cols           columns
	keepTimestamps bool
	gpus           map[string]telemetry.GPU
	strs           map[string]string
	lastTS         string
	lastTime       time.Time
}

// maxInterned bounds the string intern table; past it the table starts afresh, so files with
// ever-new pod names cannot grow memory without bound.
const maxInterned = 1 << 16

func newParser(cols columns, keepTimestamps bool) *parser {
	return &parser{
		cols: cols, keepTimestamps: keepTimestamps,
		gpus: make(map[string]telemetry.GPU), strs: make(map[string]string),
	}
}

func (p *parser) parse(rec []field) (telemetry.Reading, error) {
	if len(rec) != p.cols.count {
		return telemetry.Reading{}, fmt.Errorf("has %d fields, header has %d", len(rec), p.cols.count)
	}
	uuid := p.field(rec, p.cols.uuid)
	if uuid == "" {
		return telemetry.Reading{}, errors.New("uuid is empty")
	}
	metric := p.field(rec, p.cols.metric)
	if metric == "" {
		return telemetry.Reading{}, errors.New("metric_name is empty")
	}
	value, err := parseValue(p.field(rec, p.cols.value))
	if err != nil {
		return telemetry.Reading{}, err
	}
	var ts time.Time
	if p.keepTimestamps {
		if ts, err = p.timestamp(p.field(rec, p.cols.timestamp)); err != nil {
			return telemetry.Reading{}, err
		}
	}
	gpu := p.gpu(uuid, rec)
	return telemetry.Reading{
		GPU: gpu,
		Sample: telemetry.Sample{
			GPU:       gpu.UUID,
			Metric:    p.intern(metric),
			Time:      ts,
			Value:     value,
			Container: p.intern(p.field(rec, p.cols.container)),
			Pod:       p.intern(p.field(rec, p.cols.pod)),
			Namespace: p.intern(p.field(rec, p.cols.namespace)),
		},
	}, nil
}

// field returns the trimmed value of column i, "" when the column is absent.
func (p *parser) field(rec []field, i int) string {
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(rec[i].value())
}

// gpu returns the interned GPU for uuid, refreshed when the row's metadata differs from the
// last row of that GPU. Labels are read in their escaped form: unescaping labels_raw on
// every row would double the cost of reading a DCGM file.
func (p *parser) gpu(uuid string, rec []field) telemetry.GPU {
	var labels field
	if p.cols.label >= 0 {
		labels = rec[p.cols.label]
	}
	fresh := telemetry.GPU{
		UUID:          uuid,
		Hostname:      p.field(rec, p.cols.hostname),
		Index:         parseIndex(p.field(rec, p.cols.gpuIndex)),
		Device:        p.field(rec, p.cols.device),
		ModelName:     p.field(rec, p.cols.model),
		DriverVersion: label(labels, "DCGM_FI_DRIVER_VERSION"),
	}
	if fresh.Hostname == "" {
		fresh.Hostname = label(labels, "Hostname")
	}
	if fresh.ModelName == "" {
		fresh.ModelName = label(labels, "modelName")
	}
	if known, ok := p.gpus[uuid]; ok && known == fresh {
		return known
	}
	g := telemetry.GPU{
		UUID: strings.Clone(fresh.UUID), Hostname: strings.Clone(fresh.Hostname), Index: fresh.Index,
		Device: strings.Clone(fresh.Device), ModelName: strings.Clone(fresh.ModelName),
		DriverVersion: strings.Clone(fresh.DriverVersion),
	}
	p.gpus[g.UUID] = g
	return g
}

func (p *parser) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := p.strs[s]; ok {
		return v
	}
	if len(p.strs) >= maxInterned {
		clear(p.strs)
	}
	v := strings.Clone(s)
	p.strs[v] = v
	return v
}

func (p *parser) timestamp(s string) (time.Time, error) {
	if s == p.lastTS && s != "" {
		return p.lastTime, nil
	}
	t, err := ParseTime(s)
	if err != nil {
		return time.Time{}, err
	}
	p.lastTS, p.lastTime = strings.Clone(s), t
	return t, nil
}

// ParseTime reads a timestamp as RFC 3339 (with or without fractional seconds), as
// "2006-01-02 15:04:05[.fff]" in UTC, or as a Unix time in seconds (milliseconds when the
// number is too large to be seconds). The result is in UTC.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("timestamp is empty")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02 15:04:05.999999999", s); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && !math.IsInf(f, 0) {
		if f > 1e11 { // later than year 5138 in seconds: it is milliseconds
			f /= 1000
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("timestamp %q is not RFC 3339 or Unix time", s)
}

func parseValue(s string) (float64, error) {
	if s == "" {
		return 0, errors.New("value is empty")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("value %q is not a number", s)
	}
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		if errors.Is(err, strconv.ErrRange) && v > 0 {
			return 0, errBlank // beyond float64: only a sentinel is that large
		}
		return 0, fmt.Errorf("value %q is not a finite number", s)
	case v >= fp64Blank:
		return 0, errBlank
	case v >= int32BlankLow && v <= int32BlankTop && v == math.Trunc(v):
		return 0, errBlank
	}
	return v, nil
}

func parseIndex(s string) int {
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 {
		return -1
	}
	return i
}

// label extracts key's value from a labels_raw field such as
// `DCGM_FI_DRIVER_VERSION="535.129.03",Hostname="host-1",…`, "" when absent. It reads the
// field as it stands in the line, where quotes may still be doubled.
func label(labels field, key string) string {
	quote := `"`
	if labels.escaped {
		quote = `""`
	}
	prefix := key + "=" + quote
	for rest := labels.raw; rest != ""; {
		i := strings.Index(rest, prefix)
		if i < 0 {
			return ""
		}
		if i == 0 || rest[i-1] == ',' || rest[i-1] == ' ' || rest[i-1] == '{' {
			v := rest[i+len(prefix):]
			if end := strings.Index(v, quote); end >= 0 {
				return v[:end]
			}
			return ""
		}
		rest = rest[i+len(key):]
	}
	return ""
}
