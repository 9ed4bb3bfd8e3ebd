package scrapesource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// badLine is an exposition line the parser refused, numbered from 1.
type badLine struct {
	Number int
	Text   string
	Reason string // what was wrong, in the parser's words
}

// maxBadLineText bounds the text of a bad line a target's status keeps.
const maxBadLineText = 200

// decode reads an exposition into samples stamped ts unless they carry their own time. The
// text format, which dcgm-exporter serves, is read by expfmt's parser, and a line it refuses
// costs that line only: Prometheus fails the whole scrape on one, VictoriaMetrics skips the
// line, and dcgm-exporter before 4.6 writes "ERROR - FAILED TO CONVERT TO STRING" as the value
// of fields it cannot read, so one bad field would otherwise cost every GPU of the node every
// interval. Other formats (protobuf, OpenMetrics) are read whole, as Prometheus reads them.
func decode(body []byte, format expfmt.Format, ts model.Time) (model.Vector, []badLine, error) {
	opts := &expfmt.DecodeOptions{Timestamp: ts}
	if format.FormatType() != expfmt.TypeTextPlain {
		dec := expfmt.SampleDecoder{Dec: expfmt.NewDecoder(bytes.NewReader(body), format), Opts: opts}
		var out model.Vector
		for {
			var vec model.Vector
			err := dec.Decode(&vec)
			if errors.Is(err, io.EOF) {
				return out, nil, nil
			}
			if err != nil {
				return nil, nil, fmt.Errorf("parse exposition: %w", err)
			}
			out = append(out, vec...)
		}
	}
	scheme := model.LegacyValidation
	if format.ToEscapingScheme() == model.NoEscaping {
		scheme = model.UTF8Validation
	}
	families, bad := parseText(body, scheme)
	out, err := expfmt.ExtractSamples(opts, families...)
	if err != nil { // a family whose type the parser accepted but has no samples to give
		return out, bad, fmt.Errorf("parse exposition: %w", err)
	}
	return out, bad, nil
}

// parseText parses a text exposition, all of it at once when it is well formed (the usual
// case, at the parser's full speed). Otherwise it parses it again family by family, and a
// family that fails line by line under its HELP and TYPE lines, keeping every line that
// parses: a bad line costs one parse of its family's lines, not of the whole body.
func parseText(body []byte, scheme model.ValidationScheme) ([]*dto.MetricFamily, []badLine) {
	p := expfmt.NewTextParser(scheme)
	whole, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err == nil {
		out := make([]*dto.MetricFamily, 0, len(whole))
		for _, f := range whole {
			out = append(out, f)
		}
		return out, nil
	}
	var (
		out    []*dto.MetricFamily
		bad    []badLine
		lines  = bytes.SplitAfter(body, []byte("\n"))
		family string
		start  int // the current family's first line
	)
	parse := func(text []byte) (map[string]*dto.MetricFamily, error) {
		return p.TextToMetricFamilies(bytes.NewReader(text))
	}
	flush := func(end int) {
		if start >= end {
			return
		}
		if fams, err := parse(bytes.Join(lines[start:end], nil)); err == nil {
			for _, f := range fams {
				out = append(out, f)
			}
			return
		}
		var head []byte // the family's HELP and TYPE lines, which each sample line is read under
		for i := start; i < end; i++ {
			line := lines[i]
			if isComment(line) || len(bytes.TrimSpace(line)) == 0 {
				head = append(head, ensureNewline(line)...)
				continue
			}
			fams, err := parse(append(head[:len(head):len(head)], ensureNewline(line)...))
			if err != nil {
				bad = append(bad, badLine{Number: i + 1, Text: clip(string(bytes.TrimRight(line, "\r\n"))), Reason: reasonOf(err)})
				continue
			}
			for _, f := range fams {
				out = append(out, f)
			}
		}
		if _, err := parse(head); err != nil { // a HELP or TYPE line the parser refuses
			bad = append(bad, badLine{Number: start + 1, Text: clip(string(bytes.TrimRight(lines[start], "\r\n"))), Reason: reasonOf(err)})
		}
	}
	for i, line := range lines {
		name := familyOf(line)
		if name == "" || belongs(name, family) {
			continue
		}
		flush(i)
		family, start = name, i
	}
	flush(len(lines))
	return out, bad
}

// familyOf is the metric family a line names: the name of a HELP or TYPE comment, or of a
// sample; "" for a blank line or another comment.
func familyOf(line []byte) string {
	s := strings.TrimLeft(string(line), " \t")
	if rest, ok := strings.CutPrefix(s, "#"); ok {
		fields := strings.Fields(rest)
		if len(fields) >= 2 && (fields[0] == "HELP" || fields[0] == "TYPE") {
			return fields[1]
		}
		return ""
	}
	end := strings.IndexAny(s, "{ \t\r\n")
	if end < 0 {
		end = len(s)
	}
	return s[:end]
}

// belongs reports whether a line naming name is part of family: the family's own name, or
// a histogram's or summary's suffixed series.
func belongs(name, family string) bool {
	if family == "" {
		return false
	}
	if name == family {
		return true
	}
	suffix, ok := strings.CutPrefix(name, family+"_")
	return ok && (suffix == "bucket" || suffix == "sum" || suffix == "count" || suffix == "total" || suffix == "created")
}

func isComment(line []byte) bool { return bytes.HasPrefix(bytes.TrimLeft(line, " \t"), []byte("#")) }

func ensureNewline(line []byte) []byte {
	if bytes.HasSuffix(line, []byte("\n")) {
		return line
	}
	return append(line[:len(line):len(line)], '\n')
}

// reasonOf is a parse error's message without its line number, which is the fragment's.
func reasonOf(err error) string {
	var pe expfmt.ParseError
	if errors.As(err, &pe) {
		return pe.Msg
	}
	return err.Error()
}

// clip cuts a long line in its middle, keeping its start (the series) and its end (the
// value, where dcgm-exporter's errors are).
func clip(s string) string {
	if len(s) <= maxBadLineText {
		return s
	}
	head, tail := maxBadLineText/2, len(s)-maxBadLineText/2
	for head > 0 && s[head]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		head--
	}
	for tail < len(s) && s[tail]&0xC0 == 0x80 {
		tail++
	}
	return s[:head] + "…" + s[tail:]
}
