package csvsource

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
)

// The source reads one record per line, as DCGM exports write them. A quoted field may
// still hold line breaks (RFC 4180): a line whose quote does not close is joined with the
// lines after it, up to maxRecordLines, as long as that makes one record of the header's
// width. When it does not, the line alone is rejected and the lines after it are read as
// their own rows: an unbalanced quote spoils one row, never the rest of the file.

// maxLine bounds one line; a longer one is rejected and skipped.
const maxLine = 1 << 20

var errLineTooLong = errors.New("line longer than 1 MiB")

// maxRecordLines bounds the lines one record (a quoted field with line breaks) may span.
const maxRecordLines = 32

var errUnterminated = errors.New("unterminated quoted field")

// errAfterQuote marks a quoted field followed by more text before its comma.
var errAfterQuote = errors.New("text after a closing quote")

// lineReader yields the lines of a document without their line ends.
type lineReader struct {
	r      *bufio.Reader
	n      int // number of the line last returned, from 1
	long   []byte
	unread []numbered // lines read ahead and given back, next first
}

type numbered struct {
	line []byte
	n    int
	err  error // the line could not be read (too long): next returns this instead
}

// unreadLines gives back lines read ahead (copies, in order), to be returned again.
func (l *lineReader) unreadLines(lines []numbered) {
	l.unread = append(slices.Clone(lines), l.unread...)
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line; its bytes are valid until the following call. It returns
// errLineTooLong (with the line counted) for an oversized line, io.EOF at the end.
func (l *lineReader) next() ([]byte, error) {
	if len(l.unread) > 0 {
		next := l.unread[0]
		l.unread = l.unread[1:]
		l.n = next.n
		return next.line, next.err
	}
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
				return fields, errAfterQuote
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
			return field{}, 0, errUnterminated
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

// record splits the line (the one next returned last) into fields; when a quoted field of
// it does not close, it tries the line joined with the ones after it (see the file's doc),
// and gives back what it read ahead when that does not make a record of width fields. It
// returns the record's first line number.
func (l *lineReader) record(line []byte, fields []field, width int) ([]field, int, error) {
	first := l.n
	fields, err := splitFields(line, fields)
	if !errors.Is(err, errUnterminated) {
		return fields, first, err
	}
	joined := slices.Clone(line)
	var ahead []numbered
	for len(ahead) < maxRecordLines-1 && len(joined) <= maxLine {
		next, nerr := l.next()
		if nerr != nil {
			if nerr != io.EOF {
				ahead = append(ahead, numbered{n: l.n, err: nerr}) // reported in its turn
			}
			break
		}
		ahead = append(ahead, numbered{line: slices.Clone(next), n: l.n})
		joined = append(append(joined, '\n'), next...)
		fields, err = splitFields(joined, fields)
		if errors.Is(err, errUnterminated) {
			continue
		}
		if err == nil && len(fields) == width {
			return fields, first, nil
		}
		break
	}
	l.unreadLines(ahead)
	l.n = first
	return fields, first, errUnterminated
}
