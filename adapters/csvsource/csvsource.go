// Package csvsource reads DCGM telemetry exported as CSV (dcgm-exporter's columns:
// timestamp, metric_name, gpu_id, device, uuid, modelName, Hostname, container, pod,
// namespace, value, labels_raw). Columns are found by header name, in any order and any
// letter case; a UTF-8 byte order mark, CRLF line ends and whitespace around values are
// tolerated. Files are streamed: memory stays constant whatever their size.
package csvsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

var _ ports.Source = (*Source)(nil)

// Options configure a Source. The zero value keeps no file timestamps and logs through
// slog.Default's handler discarded.
type Options struct {
	// KeepTimestamps parses the timestamp column and makes it required. When false the
	// column is ignored, since the streamer stamps samples with the time it processes them.
	KeepTimestamps bool
	// FutureTolerance, with KeepTimestamps, rejects rows stamped more than this ahead of
	// the clock (reason future); 0 means telemetry.DefaultFutureTolerance.
	FutureTolerance time.Duration
	// Now is the clock rows are checked against; nil means time.Now.
	Now func() time.Time

	// MaxLoggedRejects caps how many rejected rows are logged one by one in each pass; the
	// rest are only counted. 0 means 100.
	MaxLoggedRejects int

	// Logger receives one line per rejected row. Nil discards.
	Logger *slog.Logger

	// Keep, when set, selects rows by GPU UUID before they are parsed: a streamer that owns
	// a tenth of the GPUs skips the other nine tenths for the cost of splitting the line.
	// Skipped rows are counted in ScanStats.Rows only, never rejected.
	Keep func(uuid string) bool
}

// Source reads one CSV document each time it is scanned.
type Source struct {
	name string
	open func() (io.ReadCloser, error)
	opts Options

	// replay, for in-memory data, holds the readings of the first complete scan when there
	// are few enough: later scans replay them instead of parsing bytes that cannot change.
	replayable atomic.Bool
	replay     atomic.Pointer[replay]
}

// replay is a complete scan kept in memory.
type replay struct {
	readings []telemetry.Reading
	stats    telemetry.ScanStats
}

// maxReplayed bounds the readings kept for replay (about 200 bytes each): the bundled file
// has 2,470; larger data is parsed on every scan, in constant memory.
var maxReplayed = 50_000 // a variable for tests

// File returns a Source reading the file at path.
func File(path string, opts Options) *Source {
	return &Source{name: path, open: func() (io.ReadCloser, error) { return os.Open(path) }, opts: opts}
}

// Bytes returns a Source reading data, named name in logs and errors. data must not change:
// when it holds at most 50,000 readings it is parsed once, and later scans replay the
// readings, reporting the first scan's counts without logging its rejected rows again.
func Bytes(name string, data []byte, opts Options) *Source {
	s := &Source{
		name: name,
		open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		opts: opts,
	}
	s.replayable.Store(true)
	return s
}

// Name is the file name the source reads, for logs.
func (s *Source) Name() string { return s.name }

// Check opens the source and reads its header, so that a missing, empty or foreign file is
// reported at start rather than when the first pass begins.
func (s *Source) Check() error {
	r, err := s.open()
	if err != nil {
		return fmt.Errorf("csv %s: %w", s.name, unwrapPathError(err))
	}
	defer r.Close()
	_, _, err = s.header(r)
	return err
}

// Scan implements ports.Source.
func (s *Source) Scan(ctx context.Context, yield func(telemetry.Reading) error) (telemetry.ScanStats, error) {
	if r := s.replay.Load(); r != nil {
		return r.run(ctx, yield)
	}
	if !s.replayable.Load() {
		return s.scan(ctx, yield)
	}
	var kept []telemetry.Reading
	over := false
	stats, err := s.scan(ctx, func(r telemetry.Reading) error {
		switch {
		case over:
		case len(kept) == maxReplayed:
			over, kept = true, nil
			s.replayable.Store(false) // too many: parsed on every scan
		default:
			kept = append(kept, r)
		}
		return yield(r)
	})
	if err == nil && !over {
		s.replay.Store(&replay{readings: kept, stats: stats})
	}
	return stats, err
}

func (r *replay) run(ctx context.Context, yield func(telemetry.Reading) error) (telemetry.ScanStats, error) {
	for i, reading := range r.readings {
		if i%4096 == 0 && ctx.Err() != nil {
			return telemetry.ScanStats{}, ctx.Err()
		}
		if err := yield(reading); err != nil {
			return telemetry.ScanStats{}, err
		}
	}
	return r.stats, nil
}

// scan parses the document.
func (s *Source) scan(ctx context.Context, yield func(telemetry.Reading) error) (telemetry.ScanStats, error) {
	var stats telemetry.ScanStats
	r, err := s.open()
	if err != nil {
		return stats, fmt.Errorf("csv %s: %w", s.name, unwrapPathError(err))
	}
	defer r.Close()

	lines, cols, err := s.header(r)
	if err != nil {
		return stats, err
	}
	p := newParser(cols, s.opts.KeepTimestamps)
	now, tolerance := s.opts.Now, s.opts.FutureTolerance
	if now == nil {
		now = time.Now
	}
	if tolerance <= 0 {
		tolerance = telemetry.DefaultFutureTolerance
	}
	var clock time.Time
	maxLogged := s.opts.MaxLoggedRejects
	if maxLogged == 0 {
		maxLogged = 100
	}
	reject := func(line int, err error) {
		stats.Reject(reasonOf(err))
		if s.opts.Logger != nil && stats.Rejected <= int64(maxLogged) {
			s.opts.Logger.WarnContext(ctx, "csv row rejected", "file", s.name, "line", line, "reason", err.Error())
			if stats.Rejected == int64(maxLogged) {
				s.opts.Logger.WarnContext(ctx, "csv: further rejected rows in this pass are counted, not logged", "file", s.name)
			}
		}
	}

	var fields []field
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if ctx.Err() != nil {
				return stats, ctx.Err()
			}
			clock = now() // read now and then: a row's check is on the hot path
		}
		line, err := lines.next()
		switch {
		case err == io.EOF:
			return stats, nil
		case errors.Is(err, errLineTooLong):
			stats.Rows++
			reject(lines.n, err)
			continue
		case err != nil:
			return stats, fmt.Errorf("csv %s: line %d: %w", s.name, lines.n+1, err)
		case len(bytes.TrimSpace(line)) == 0:
			continue // blank lines carry nothing
		}
		stats.Rows++
		var at int
		if fields, at, err = lines.record(line, fields, cols.count); err != nil {
			reject(at, err)
			continue
		}
		if s.opts.Keep != nil && len(fields) == cols.count && !s.opts.Keep(strings.TrimSpace(fields[cols.uuid].value())) {
			continue
		}
		reading, err := p.parse(fields)
		if err == nil && s.opts.KeepTimestamps {
			err = telemetry.CheckNotFuture(reading.Sample.Time, clock, tolerance)
		}
		switch {
		case errors.Is(err, errBlank):
			stats.Blank++
			continue
		case err != nil:
			reject(at, err)
			continue
		}
		if err := yield(reading); err != nil {
			return stats, err
		}
	}
}

// reasonOf names why a row was rejected, for counting: the field at fault, else what was
// wrong with the record.
func reasonOf(err error) string {
	var v *telemetry.ValidationError
	switch {
	case errors.As(err, &v):
		return v.Field
	case errors.Is(err, errLineTooLong):
		return "line_length"
	case errors.Is(err, errUnterminated), errors.Is(err, errAfterQuote):
		return "quote"
	case errors.Is(err, errWidth):
		return "fields"
	}
	field, _, ok := strings.Cut(err.Error(), " ")
	if ok && (field == "uuid" || field == "metric_name" || field == "timestamp" || field == "value" || field == "labels_raw:") {
		return strings.TrimSuffix(field, ":")
	}
	return "other"
}

// header reads the header line and maps the columns, returning the reader positioned on the
// first data row.
func (s *Source) header(r io.Reader) (*lineReader, columns, error) {
	lines := newLineReader(r)
	line, err := lines.next()
	if err == io.EOF || (err == nil && len(bytes.TrimSpace(line)) == 0) {
		return nil, columns{}, fmt.Errorf("csv %s: file is empty", s.name)
	}
	if err != nil {
		return nil, columns{}, fmt.Errorf("csv %s: header: %w", s.name, err)
	}
	fields, err := splitFields(bytes.TrimPrefix(line, []byte("\ufeff")), nil)
	if err != nil {
		return nil, columns{}, fmt.Errorf("csv %s: header: %w", s.name, err)
	}
	head := make([]string, len(fields))
	for i, f := range fields {
		head[i] = f.value()
	}
	cols, err := mapColumns(head, s.opts.KeepTimestamps)
	if err != nil {
		return nil, columns{}, fmt.Errorf("csv %s: %w", s.name, err)
	}
	return lines, cols, nil
}

// unwrapPathError drops os.PathError's repetition of the path, which the caller names.
func unwrapPathError(err error) error {
	var perr *os.PathError
	if errors.As(err, &perr) {
		return perr.Err
	}
	return err
}

// columns holds the index of each known column, -1 when absent.
type columns struct {
	count                                   int
	timestamp, metric, gpuIndex, device     int
	uuid, model, hostname                   int
	container, pod, namespace, value, label int
}

func mapColumns(head []string, keepTimestamps bool) (columns, error) {
	c := columns{count: len(head)}
	fields := map[string]*int{
		"timestamp": &c.timestamp, "metric_name": &c.metric, "gpu_id": &c.gpuIndex,
		"device": &c.device, "uuid": &c.uuid, "modelname": &c.model, "hostname": &c.hostname,
		"container": &c.container, "pod": &c.pod, "namespace": &c.namespace,
		"value": &c.value, "labels_raw": &c.label,
	}
	for _, idx := range fields {
		*idx = -1
	}
	for i, name := range head {
		if idx, ok := fields[strings.ToLower(strings.TrimSpace(name))]; ok && *idx < 0 {
			*idx = i
		}
	}
	required := []string{"metric_name", "uuid", "value"}
	if keepTimestamps {
		required = append([]string{"timestamp"}, required...)
	}
	var missing []string
	for _, name := range required {
		if *fields[name] < 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("header lacks required column(s) %s (found: %s)",
			strings.Join(missing, ", "), strings.Join(head, ","))
	}
	return c, nil
}
