package engine

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Cursor marks the last point of a page: its time, metric id and workload, the keys points
// are ordered by. A page resumes after it, whatever chunks the points have moved to since.
type Cursor struct {
	TS     int64
	Metric int32
	Work   *Workload // nil for a sample of no workload
}

// ErrBadCursor reports a string Encode did not make.
var ErrBadCursor = errors.New("not a cursor")

// Point returns the point a page resumes after.
func (c Cursor) Point() Point { return Point{TS: c.TS, Metric: c.Metric, Work: c.Work} }

// Encode makes the opaque string pages hand out: v1 without a workload, as before workloads
// were part of a point's order, v2 with one.
func (c Cursor) Encode() string {
	s := strconv.FormatInt(c.TS, 10) + ":" + strconv.Itoa(int(c.Metric))
	if c.Work == nil {
		s = "v1:" + s
	} else {
		s = "v2:" + s
		for _, part := range []string{c.Work.Container, c.Work.Pod, c.Work.Namespace} {
			s += ":" + base64.RawURLEncoding.EncodeToString([]byte(part)) // no colon in it
		}
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// DecodeCursor reads a string Encode made.
func DecodeCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	parts := strings.Split(string(raw), ":")
	if !(len(parts) == 3 && parts[0] == "v1") && !(len(parts) == 6 && parts[0] == "v2") {
		return Cursor{}, ErrBadCursor
	}
	ts, err1 := strconv.ParseInt(parts[1], 10, 64)
	metric, err2 := strconv.ParseInt(parts[2], 10, 32)
	if err1 != nil || err2 != nil {
		return Cursor{}, ErrBadCursor
	}
	c := Cursor{TS: ts, Metric: int32(metric)}
	if parts[0] == "v2" {
		var w [3]string
		for i, p := range parts[3:] {
			b, err := base64.RawURLEncoding.DecodeString(p)
			if err != nil {
				return Cursor{}, ErrBadCursor
			}
			w[i] = string(b)
		}
		c.Work = &Workload{Container: w[0], Pod: w[1], Namespace: w[2]}
	}
	return c, nil
}
