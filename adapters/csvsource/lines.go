package csvsource

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// DCGM exports never put a line break inside a field, so the source reads one record per
// line. Unlike a general CSV reader, a row with an unbalanced quote then spoils only itself
// instead of swallowing the rows after it.

// maxLine bounds one line; a longer one is rejected and skipped.
const maxLine = 1 << 20

var errLineTooLong = errors.New("line longer than 1 MiB")

// lineReader yields the lines of a document without their line ends.
type lineReader struct {
	r    *bufio.Reader
	n    int // number of the line last returned, from 1
	long []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line; its bytes are valid until the following call. It returns
// errLineTooLong (with the line counted) for an oversized line, io.EOF at the end.
func (l *lineReader) next() ([]byte, error) {
	line, err := l.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		l.long = append(l.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = l.r.ReadSlice('\n')
			if len(l.long) <= maxLine {
				l.long = append(l.long, line...)
			}
		}
		line = l.long
		if len(line) > maxLine {
			l.n++
			return nil, errLineTooLong
		}
	}
	if len(line) == 0 && err != nil {
		return nil, err
	}
	l.n++
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
}

// field is one CSV field as it stands in the line: raw holds a quoted field's content still
// escaped (doubled quotes) when escaped is set, so that fields nobody reads are never
// unescaped.
type field struct {
	raw     string
	escaped bool
}

// value is the field's text.
func (f field) value() string {
	if f.escaped {
		return strings.ReplaceAll(f.raw, `""`, `"`)
	}
	return f.raw
}

// splitFields splits one CSV line into fields, reusing fields' storage. Quoted fields may
// hold commas and doubled quotes; a quote inside an unquoted field is taken literally. The
// fields share one allocation per line.
func splitFields(line []byte, fields []field) ([]field, error) {
	fields = fields[:0]
	s := string(line)
	for i := 0; ; {
		if q := skipSpaces(s, i); q < len(s) && s[q] == '"' {
			f, end, err := quotedField(s, q)
			if err != nil {
				return fields, err
			}
			fields = append(fields, f)
			i = skipSpaces(s, end)
			if i == len(s) {
				return fields, nil
			}
			if s[i] != ',' {
				return fields, errors.New("text after a closing quote")
			}
			i++
			continue
		}
		k := strings.IndexByte(s[i:], ',')
		if k < 0 {
			return append(fields, field{raw: s[i:]}), nil
		}
		fields = append(fields, field{raw: s[i : i+k]})
		i += k + 1
	}
}

// quotedField reads the quoted field opening at s[open] and returns it and the index just
// past its closing quote.
func quotedField(s string, open int) (field, int, error) {
	escaped := false
	for j := open + 1; ; {
		k := strings.IndexByte(s[j:], '"')
		if k < 0 {
			return field{}, 0, errors.New("unterminated quoted field")
		}
		j += k
		if j+1 < len(s) && s[j+1] == '"' { // a doubled quote stands for one
			escaped = true
			j += 2
			continue
		}
		return field{raw: s[open+1 : j], escaped: escaped}, j + 1, nil
	}
}

func skipSpaces(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}
