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

// appendTelemetryPage encodes p, with samples as its data, exactly as encoding/json encodes
// p with toSample of each sample as p.Data: a page of 1,000 samples is the API's most
// frequent large answer, and reflection-based encoding was a third of its CPU. A test holds
// the two encodings equal. p.Data is not read.
func appendTelemetryPage(b []byte, p TelemetryPage, samples []telemetry.Sample) []byte {
	b = append(b, `{"uuid":`...)
	b = appendJSONString(b, p.UUID)
	b = appendSamples(append(b, `,"data":`...), samples)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(p.Count), 10)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(p.Limit), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, int64(p.Offset), 10)
	if p.NextCursor != "" {
		b = append(b, `,"next_cursor":`...)
		b = appendJSONString(b, p.NextCursor)
	}
	return append(b, '}')
}

// pageBuffers hold encoded pages, about 80 kB for 1,000 samples: the window query's
// answer, written to the client before the buffer goes back.
var pageBuffers = sync.Pool{New: func() any { return new([]byte) }}

func appendSamples(b []byte, samples []telemetry.Sample) []byte {
	b = append(b, '[')
	var (
		last  time.Time
		ts    = make([]byte, 0, 40) // last formatted: a GPU's metrics share their timestamps
		names quotedNames
	)
	for i := range samples {
		s := &samples[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"timestamp":"`...)
		if i == 0 || s.Time != last {
			last, ts = s.Time, s.Time.AppendFormat(ts[:0], time.RFC3339Nano)
		}
		b = append(b, ts...)
		b = append(b, `","metric":`...)
		b = names.append(b, s.Metric)
		b = append(b, `,"value":`...)
		b = appendJSONFloat(b, s.Value)
		for _, f := range [3]struct{ key, val string }{{`,"container":`, s.Container}, {`,"pod":`, s.Pod}, {`,"namespace":`, s.Namespace}} {
			if f.val != "" {
				b = append(b, f.key...)
				b = appendJSONString(b, f.val)
			}
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// quotedNames remembers the JSON of the metric names a page repeats (a GPU reports a few
// dozen at most): quoting a name each time was a tenth of the API's CPU. Samples come
// ordered by time, then metric, so names recur in the same order: the entry after the last
// one found is tried first.
type quotedNames struct {
	names  []string
	quoted [][]byte // JSON of names[i]
	next   int
}

const maxQuotedNames = 64

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
		return appendJSONString(b, name)
	}
	quoted := appendJSONString(nil, name)
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
