package telemetry

import "time"

// TimeRange selects samples by time, inclusive at both ends. A zero Start or End leaves that
// side open.
type TimeRange struct {
	Start time.Time
	End   time.Time
}

// Contains reports whether t lies within the range.
func (r TimeRange) Contains(t time.Time) bool {
	return (r.Start.IsZero() || !t.Before(r.Start)) && (r.End.IsZero() || !t.After(r.End))
}

// Page selects a slice of an ordered result.
type Page struct {
	Limit  int
	Offset int
}

// SampleQuery asks for one GPU's samples within a time range, ordered by time.
type SampleQuery struct {
	GPU   string // UUID
	Range TimeRange
	Page  Page
}

// Stats summarises what is stored.
type Stats struct {
	TotalSamples int64
	UniqueGPUs   int64
	UniqueHosts  int64
}

// ScanStats counts what one pass over a source saw. Rows counts data rows read (the header
// excluded); Rejected rows were malformed and skipped; Blank values were DCGM's "no data"
// sentinels, skipped too but counted apart because they are not errors.
type ScanStats struct {
	Rows     int64
	Rejected int64
	Blank    int64
}

// Add returns the sum of two counts.
func (s ScanStats) Add(o ScanStats) ScanStats {
	return ScanStats{Rows: s.Rows + o.Rows, Rejected: s.Rejected + o.Rejected, Blank: s.Blank + o.Blank}
}
