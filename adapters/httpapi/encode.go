package httpapi

import (
	"encoding/json"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// pageEncoder encodes a TelemetryPage as its samples arrive from the store, exactly as
// encoding/json encodes the page with toSample of each sample as its Data: a page of 1,000
// samples is the API's most frequent large answer, reflection-based encoding was a third
// of its CPU, and encoding as the samples arrive saves holding them all. A test holds the
// two encodings equal. Encoders are pooled with their buffer, about 80 kB for 1,000 samples.
type pageEncoder struct {
	b     []byte
	count int
	last  time.Time // of the last sample: the metrics of a scrape share their timestamp
	head  []byte    // {"timestamp":"<last>","metric":
	times timeText
	names quotedNames
}

var pageEncoders = sync.Pool{New: func() any { return new(pageEncoder) }}

// begin starts a page of the GPU.
func (e *pageEncoder) begin(uuid string) {
	e.b = append(appendJSONString(append(e.b[:0], `{"uuid":`...), uuid), `,"data":[`...)
	e.count = 0
}

// add appends a sample to the page's data.
func (e *pageEncoder) add(s telemetry.Sample) {
	b := e.b
	if e.count > 0 {
		b = append(b, ',')
	}
	if e.count == 0 || s.Time != e.last {
		e.setHead(s.Time)
	}
	b = append(b, e.head...)
	b = e.names.append(b, s.Metric)
	b = appendJSONFloat(b, s.Value)
	if s.Container != "" || s.Pod != "" || s.Namespace != "" { // most GPUs run no labelled workload
		for _, f := range [3]struct{ key, val string }{{`,"container":`, s.Container}, {`,"pod":`, s.Pod}, {`,"namespace":`, s.Namespace}} {
			if f.val != "" {
				b = append(b, f.key...)
				b = appendJSONString(b, f.val)
			}
		}
	}
	e.b = append(b, '}')
	e.count++
}

// setHead makes head for t.
func (e *pageEncoder) setHead(t time.Time) {
	e.last = t
	e.head = append(e.times.append(append(e.head[:0], `{"timestamp":"`...), t), `","metric":`...)
}

// timeText formats times as time.RFC3339Nano does. Samples stamped as they are processed
// each have a time of their own but share the minute with their neighbours, and formatting
// the whole time was a fifth of encoding a page of them: the date and time up to the minute
// are kept, and within the hour only the minute's digits are rewritten (aggregation buckets
// are a minute apart).
type timeText struct {
	minute int64  // of prefix, in Unix minutes
	prefix []byte // "2006-01-02T15:04:" of minute in UTC, empty until the first
}

func (f *timeText) append(b []byte, t time.Time) []byte {
	if t.Location() != time.UTC {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	sec := t.Unix()
	minute := sec / 60
	if sec%60 < 0 {
		minute--
	}
	switch {
	case len(f.prefix) == 0 || minute/60 != f.minute/60 || minute < 0 || f.minute < 0:
		f.minute, f.prefix = minute, t.AppendFormat(f.prefix[:0], "2006-01-02T15:04:")
	case minute != f.minute: // the same hour: only the minute's digits change
		m := minute % 60
		f.minute, f.prefix[14], f.prefix[15] = minute, byte('0'+m/10), byte('0'+m%10)
	}
	b = append(b, f.prefix...)
	s := sec - minute*60
	b = append(b, byte('0'+s/10), byte('0'+s%10))
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte // .999999999 without its trailing zeros
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i], ns = byte('0'+ns%10), ns/10
		}
		n := len(frac)
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

// end closes the page with p's other fields (p.UUID, p.Data and p.Count are not read) and
// returns its JSON, valid until the next begin.
func (e *pageEncoder) end(p TelemetryPage) []byte {
	b := append(e.b, `],"count":`...)
	b = strconv.AppendInt(b, int64(e.count), 10)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(p.Limit), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, int64(p.Offset), 10)
	if p.NextCursor != "" {
		b = append(b, `,"next_cursor":`...)
		b = appendJSONString(b, p.NextCursor)
	}
	e.b = append(b, '}')
	return e.b
}

// appendAggregatePage encodes p, with buckets as its data, exactly as encoding/json encodes p
// with toBucket of each bucket as p.Data (a test holds the two equal), except that a value
// beyond float64 — an average of values near its limits — is null rather than an error.
// Reflection, and time.Time's MarshalJSON above all, were two fifths of an aggregation's
// CPU. p.Data and p.Count are not read.
func appendAggregatePage(b []byte, p AggregatePage, buckets []telemetry.Bucket) []byte {
	var (
		times timeText
		names quotedNames
	)
	b = appendJSONString(append(b, `{"uuid":`...), p.UUID)
	b = appendJSONString(append(b, `,"step":`...), p.Step)
	b = appendJSONString(append(b, `,"agg":`...), p.Agg)
	b = append(b, `,"data":[`...)
	for i, bk := range buckets {
		if i > 0 {
			b = append(b, ',')
		}
		b = times.append(append(b, `{"bucket_start":"`...), bk.Start)
		b = names.append(append(b, `","metric":`...), bk.Metric)
		if math.IsInf(bk.Value, 0) || math.IsNaN(bk.Value) {
			b = append(b, "null"...)
		} else {
			b = appendJSONFloat(b, bk.Value)
		}
		b = strconv.AppendInt(append(b, `,"count":`...), bk.Count, 10)
		b = append(b, '}')
	}
	b = strconv.AppendInt(append(b, `],"count":`...), int64(len(buckets)), 10)
	b = strconv.AppendBool(append(b, `,"truncated":`...), p.Truncated)
	b = appendJSONString(append(b, `,"resolution":`...), p.Resolution)
	if len(p.Warnings) > 0 {
		b = append(b, `,"warnings":[`...)
		for i, w := range p.Warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, w)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// quotedNames remembers the JSON of the metric names pages repeat (a fleet reports a few
// dozen at most), each followed by the key after it, `"<name>","value":`: quoting a name
// each time was a tenth of the API's CPU. Samples come ordered by time, then metric, so
// names recur in the same order: the entry after the last one found is tried first.
type quotedNames struct {
	names  []string
	quoted [][]byte // JSON of names[i], then ,"value":
	next   int
}

const (
	maxQuotedNames = 64
	valueKey       = `,"value":`
)

func (q *quotedNames) append(b []byte, name string) []byte {
	if q.next < len(q.names) && q.names[q.next] == name {
		q.next++
		return append(b, q.quoted[q.next-1]...)
	}
	for i, n := range q.names {
		if n == name {
			q.next = i + 1
			return append(b, q.quoted[i]...)
		}
	}
	if len(q.names) == maxQuotedNames {
		return append(appendJSONString(b, name), valueKey...)
	}
	quoted := append(appendJSONString(nil, name), valueKey...)
	q.names, q.quoted, q.next = append(q.names, name), append(q.quoted, quoted), len(q.names)+1
	return append(b, quoted...)
}

// appendJSONString quotes plain ASCII directly and leaves anything encoding/json would escape
// (control characters, quotes, backslashes, <, >, &, non-ASCII) to encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s)
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONFloat formats like encoding/json: shortest representation, exponent form only
// for very small or large magnitudes, and "e-7" rather than "e-07". Values are finite.
func appendJSONFloat(b []byte, f float64) []byte {
	// Most DCGM values are whole numbers (percentages, MHz, °C, MiB): print them as integers,
	// which is what the shortest float formatting yields for them, at a fraction of its cost.
	// -0 keeps its sign through the general path.
	if i := int64(f); float64(i) == f && i > -1e15 && i < 1e15 && (i != 0 || !math.Signbit(f)) {
		return strconv.AppendInt(b, i, 10)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
