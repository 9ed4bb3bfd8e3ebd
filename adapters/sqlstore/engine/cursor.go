package engine

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Cursor marks the last point of a page: its time and metric id, the two keys points are
// ordered by. A page resumes after it, whatever chunks the points have moved to since.
type Cursor struct {
	TS     int64
	Metric int32
}

// ErrBadCursor reports a string Encode did not make.
var ErrBadCursor = errors.New("not a cursor")

// Point returns the point a page resumes after.
func (c Cursor) Point() Point { return Point{TS: c.TS, Metric: c.Metric} }

// Encode makes the opaque string pages hand out.
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(c.TS, 10) + ":" + strconv.Itoa(int(c.Metric))))
}

// DecodeCursor reads a string Encode made.
func DecodeCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != 3 || parts[0] != "v1" {
		return Cursor{}, ErrBadCursor
	}
	ts, err1 := strconv.ParseInt(parts[1], 10, 64)
	metric, err2 := strconv.ParseInt(parts[2], 10, 32)
	if err1 != nil || err2 != nil {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{TS: ts, Metric: int32(metric)}, nil
}
