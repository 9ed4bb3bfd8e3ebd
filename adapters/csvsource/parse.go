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

// errWidth marks a record with more or fewer fields than the header.
var errWidth = errors.New("record width")

// parser turns records into readings. It keeps what each series (a row without its time
// and value) reads as, so that a row's labels are parsed once per series rather than once
// per row, and a reading does not keep its whole CSV line (labels_raw makes lines long)
// alive in memory; and it caches the last timestamp parsed, since rows come in groups
// sharing one timestamp.
type parser struct {
	cols           columns
	keepTimestamps bool
	series         map[string]series
	gpus           map[string]telemetry.GPU // by key: one copy of each device's strings
	strs           map[string]string
	key            []byte
	lastTS         string
	lastTime       time.Time
}

// series is what the columns of a row other than timestamp and value read as.
type series struct {
	reading telemetry.Reading
	err     error
}

// maxInterned bounds the string intern table and the series table; past it a table starts
// afresh, so files with ever-new pod names cannot grow memory without bound.
const maxInterned = 1 << 16

func newParser(cols columns, keepTimestamps bool) *parser {
	return &parser{
		cols: cols, keepTimestamps: keepTimestamps, series: make(map[string]series),
		gpus: make(map[string]telemetry.GPU), strs: make(map[string]string),
	}
}

func (p *parser) parse(rec []field) (telemetry.Reading, error) {
	if len(rec) != p.cols.count {
		return telemetry.Reading{}, fmt.Errorf("%w: has %d fields, header has %d", errWidth, len(rec), p.cols.count)
	}
	r, err := p.seriesOf(rec)
	if err != nil {
		return telemetry.Reading{}, err
	}
	if r.Sample.Value, err = parseValue(p.field(rec, p.cols.value)); err != nil {
		return telemetry.Reading{}, err
	}
	if telemetry.IsBlank(r.Sample.Metric, r.Sample.Value) {
		return telemetry.Reading{}, errBlank
	}
	switch {
	case p.keepTimestamps:
		if r.Sample.Time, err = p.timestamp(p.field(rec, p.cols.timestamp)); err != nil {
			return telemetry.Reading{}, err
		}
	case p.cols.timestamp >= 0:
		// Only the spacing of the file's timestamps is used, to pace a replay: a row without
		// one readable is stamped when it is processed.
		r.Sample.Time, _ = p.timestamp(p.field(rec, p.cols.timestamp))
	}
	return r, nil
}

// seriesOf returns the reading, without time and value, that the row's other columns make.
func (p *parser) seriesOf(rec []field) (telemetry.Reading, error) {
	p.key = p.key[:0]
	for i, f := range rec {
		if i != p.cols.timestamp && i != p.cols.value {
			p.key = append(p.key, f.raw...)
			p.key = append(p.key, 0)
		}
	}
	if known, ok := p.series[string(p.key)]; ok {
		return known.reading, known.err
	}
	r, err := p.read(rec)
	if len(p.series) >= maxInterned {
		clear(p.series)
	}
	p.series[string(p.key)] = series{reading: r, err: err}
	return r, err
}

// read makes a series' reading from its labels_raw, read as dcgm-exporter's labels are,
// then from the named columns, which win where they are not empty.
func (p *parser) read(rec []field) (telemetry.Reading, error) {
	var labels []telemetry.Label
	if p.cols.label >= 0 {
		var err error
		if labels, err = parseLabels(rec[p.cols.label].value()); err != nil {
			return telemetry.Reading{}, err
		}
	}
	if metric := p.field(rec, p.cols.metric); metric != "" { // a family's own labels are named by it
		labels = append(labels, telemetry.Label{Name: "__name__", Value: metric})
	}
	r, err := telemetry.SeriesReading(labels)
	if err != nil && !errors.Is(err, telemetry.ErrNoDevice) {
		return telemetry.Reading{}, err
	}
	set := func(dst *string, col int) {
		if v := p.field(rec, col); v != "" {
			*dst = v
		}
	}
	if v := p.field(rec, p.cols.uuid); v != "" {
		r.GPU.UUID, r.GPU.IDFrom = v, telemetry.IDFromUUID
	}
	set(&r.GPU.Device, p.cols.device)
	set(&r.GPU.ModelName, p.cols.model)
	set(&r.GPU.Hostname, p.cols.hostname)
	set(&r.Sample.Container, p.cols.container)
	set(&r.Sample.Pod, p.cols.pod)
	set(&r.Sample.Namespace, p.cols.namespace)
	if v := p.field(rec, p.cols.gpuIndex); v != "" {
		r.GPU.Index = parseIndex(v)
	}
	switch {
	case r.GPU.UUID == "":
		return telemetry.Reading{}, errors.New("uuid is empty")
	case r.Sample.Metric == "":
		return telemetry.Reading{}, errors.New("metric_name is empty")
	}
	r.Sample.GPU = r.GPU.Key()
	if err := r.CheckSeries(); err != nil { // text the store cannot keep
		return telemetry.Reading{}, err
	}
	r.GPU = p.gpu(r.GPU)
	r.Sample.Metric = p.intern(r.Sample.Metric)
	r.Sample.Container, r.Sample.Pod, r.Sample.Namespace = p.intern(r.Sample.Container), p.intern(r.Sample.Pod), p.intern(r.Sample.Namespace)
	return r, nil
}

// field returns the trimmed value of column i, "" when the column is absent.
func (p *parser) field(rec []field, i int) string {
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(rec[i].value())
}

// gpu returns the interned copy of g, replacing the one kept when g's metadata differs.
func (p *parser) gpu(g telemetry.GPU) telemetry.GPU {
	key := g.Key()
	if known, ok := p.gpus[key]; ok && known.Equal(g) {
		return known
	}
	g.UUID, g.Instance, g.InstanceProfile = strings.Clone(g.UUID), strings.Clone(g.Instance), strings.Clone(g.InstanceProfile)
	g.Hostname, g.Device, g.ModelName = strings.Clone(g.Hostname), strings.Clone(g.Device), strings.Clone(g.ModelName)
	g.DriverVersion, g.PCIBusID = strings.Clone(g.DriverVersion), strings.Clone(g.PCIBusID)
	if len(p.gpus) >= maxInterned {
		clear(p.gpus)
	}
	p.gpus[g.Key()] = g
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
	if err == nil {
		err = telemetry.CheckTime(t) // a time the store cannot keep, e.g. 0001-01-01
	}
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
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("value %q is not a finite number", s)
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

// parseLabels reads a labels_raw field, name="value" pairs separated by commas as in
// Prometheus' text format (`DCGM_FI_DRIVER_VERSION="535.129.03",Hostname="host-1",…`, braces
// optional), with its escapes \\, \" and \n.
func parseLabels(s string) ([]telemetry.Label, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	var labels []telemetry.Label
	for {
		s = strings.TrimLeft(s, " ,")
		if s == "" {
			return labels, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return nil, fmt.Errorf("labels_raw: %q is not name=\"value\"", cut(s, 40))
		}
		name := strings.TrimSpace(s[:eq])
		var value strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				if s[i] == 'n' {
					value.WriteByte('\n')
					continue
				}
			}
			value.WriteByte(s[i])
		}
		if i >= len(s) {
			return nil, fmt.Errorf("labels_raw: value of %s lacks its closing quote", name)
		}
		labels = append(labels, telemetry.Label{Name: name, Value: value.String()})
		s = s[i+1:]
	}
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
