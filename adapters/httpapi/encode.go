package httpapi

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendTelemetryPage encodes p exactly as encoding/json does, without reflection: a page of
// 1,000 samples is the API's most frequent large answer, and reflection-based encoding was a
// third of its CPU. A test holds the two encodings equal.
func appendTelemetryPage(b []byte, p TelemetryPage) []byte {
	b = append(b, `{"uuid":`...)
	b = appendJSONString(b, p.UUID)
	if p.Data == nil {
		b = append(b, `,"data":null`...)
	} else {
		b = appendSamples(append(b, `,"data":`...), p.Data)
	}
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

func appendSamples(b []byte, samples []Sample) []byte {
	b = append(b, '[')
	for i := range samples {
		s := &samples[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"timestamp":"`...)
		b = s.Timestamp.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","metric":`...)
		b = appendJSONString(b, s.Metric)
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
