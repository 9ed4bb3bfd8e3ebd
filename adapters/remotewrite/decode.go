package remotewrite

import (
	"errors"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/value"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// The WriteRequest of remote_write 1.0 (prometheus/prompb/remote.proto, types.proto), the
// fields read here; others (metadata, exemplars, native histograms) are skipped.
const (
	writeRequestTimeseries = 1 // repeated TimeSeries
	timeSeriesLabels       = 1 // repeated Label
	timeSeriesSamples      = 2 // repeated Sample
	labelName              = 1
	labelValue             = 2
	sampleValue            = 1 // double
	sampleTimestamp        = 2 // int64, milliseconds
)

// The decoder's memory: accepted series by their label bytes, up to maxCachedBytes of them;
// refused ones by a 64-bit hash, up to maxRefused; past either bound that map starts afresh.
// A sender of series that are all refused, however long their labels, holds a megabyte.
const (
	maxCachedBytes = 64 << 20
	maxRefused     = 1 << 16
)

// decoder reads WriteRequests with protowire, the protobuf module's wire-format reader,
// instead of unmarshalling them into prompb's types, which allocates every label of every
// series of every request: a series' labels are the same bytes from one request to the
// next, so the reading they make is looked up by those bytes and built once
// (docs/performance.md has the measurements). It is safe for concurrent use.
type decoder struct {
	seed maphash.Seed // of refused's hash: random, so that no sender can make a series collide

	mu      sync.RWMutex
	series  map[string]telemetry.Reading // accepted, by the series' label fields as sent
	bytes   int                          // what series holds, roughly
	refused map[uint64]error             // cachedSeries.refused, by the hash of the label fields
}

func newDecoder() *decoder { return &decoder{seed: maphash.MakeSeed()} }

// cachedSeries is what a series' labels make: its reading, or why it is refused.
type cachedSeries struct {
	reading telemetry.Reading
	refused error // telemetry.ErrNoDevice, or why the series cannot be stored
}

var errNoMetricName = errors.New("series has no __name__ label")

// scratch is one request's reusable buffers.
type scratch struct {
	key      []byte
	samples  []sample
	labels   []telemetry.Label
	readings []telemetry.Reading
	refusal  error // the first series of the request refused as invalid, for the log
}

type sample struct {
	value float64
	ts    int64
}

// malformedError marks a request that is not a WriteRequest, from the errors of emit.
type malformedError struct{ err error }

func (e *malformedError) Error() string { return e.err.Error() }
func (e *malformedError) Unwrap() error { return e.err }

// decode reads a WriteRequest, in its order, handing emit its readings chunk at a time
// (and what is left at the end), and counts what it drops: a request holds its body and
// one chunk of readings, not ~300 bytes for each of its samples. An error of emit is
// returned as it is; one of the request's wire format is a *malformedError, and the
// readings before it have been emitted.
func (d *decoder) decode(raw []byte, chunk int, counts *Stats, s *scratch, emit func([]telemetry.Reading) error) error {
	s.readings, s.refusal = s.readings[:0], nil
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return &malformedError{protowire.ParseError(n)}
		}
		raw = raw[n:]
		if num == writeRequestTimeseries && typ == protowire.BytesType {
			ts, n := protowire.ConsumeBytes(raw)
			if n < 0 {
				return &malformedError{protowire.ParseError(n)}
			}
			raw = raw[n:]
			if err := d.timeSeries(ts, counts, s); err != nil {
				return &malformedError{err}
			}
			if len(s.readings) >= chunk {
				if err := emit(s.readings); err != nil {
					return err
				}
				s.readings = s.readings[:0]
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, raw)
		if n < 0 {
			return &malformedError{protowire.ParseError(n)}
		}
		raw = raw[n:]
	}
	if len(s.readings) == 0 {
		return nil
	}
	return emit(s.readings)
}

// timeSeries appends the readings of one TimeSeries message to s.readings.
func (d *decoder) timeSeries(raw []byte, counts *Stats, s *scratch) error {
	s.key, s.samples = s.key[:0], s.samples[:0]
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, raw[n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		field, val := raw[:n+m], raw[n:n+m]
		raw = raw[n+m:]
		switch {
		case num == timeSeriesLabels && typ == protowire.BytesType:
			s.key = append(s.key, field...) // tag and length too: the key delimits each label
		case num == timeSeriesSamples && typ == protowire.BytesType:
			payload, _ := protowire.ConsumeBytes(val)
			smp, err := readSample(payload)
			if err != nil {
				return err
			}
			s.samples = append(s.samples, smp)
		}
	}
	if len(s.samples) == 0 {
		return nil
	}
	series, err := d.lookup(s)
	if err != nil {
		return err
	}
	if refused := series.refused; refused != nil {
		if errors.Is(refused, telemetry.ErrNoDevice) {
			counts.NoDevice += int64(len(s.samples))
		} else {
			counts.Rejected += int64(len(s.samples))
			if s.refusal == nil {
				s.refusal = refused
			}
		}
		return nil
	}
	for _, smp := range s.samples {
		switch {
		case value.IsStaleNaN(smp.value):
			counts.Stale++
			continue
		case math.IsNaN(smp.value) || math.IsInf(smp.value, 0):
			counts.Rejected++
			continue
		}
		r := series.reading
		r.Sample.Value = smp.value
		r.Sample.Time = time.UnixMilli(smp.ts).UTC()
		if telemetry.CheckTime(r.Sample.Time) != nil {
			counts.Rejected++
			continue
		}
		s.readings = append(s.readings, r)
	}
	return nil
}

// lookup returns what the series whose label fields are s.key makes, reading them the
// first time.
func (d *decoder) lookup(s *scratch) (cachedSeries, error) {
	hash := maphash.Bytes(d.seed, s.key)
	d.mu.RLock()
	reading, ok := d.series[string(s.key)]
	refused := d.refused[hash]
	d.mu.RUnlock()
	if ok || refused != nil {
		return cachedSeries{reading: reading, refused: refused}, nil
	}
	s.labels = s.labels[:0]
	for raw := s.key; len(raw) > 0; { // well-formed: timeSeries consumed every field
		_, _, n := protowire.ConsumeTag(raw)
		body, m := protowire.ConsumeBytes(raw[n:])
		l, err := readLabel(body)
		if err != nil {
			return cachedSeries{}, err
		}
		s.labels = append(s.labels, l)
		raw = raw[n+m:]
	}
	var series cachedSeries
	series.reading, series.refused = telemetry.SeriesReading(s.labels)
	switch {
	case series.refused != nil:
	case series.reading.Sample.Metric == "":
		series.refused = errNoMetricName
	default:
		series.refused = series.reading.CheckSeries() // text the store cannot keep, too many labels
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if series.refused != nil {
		if d.refused == nil || len(d.refused) >= maxRefused {
			d.refused = make(map[uint64]error, 1024)
		}
		d.refused[hash] = series.refused
		return series, nil
	}
	size := 2*len(s.key) + 512 // the key, the labels' strings, the reading and the map's entry
	if d.series == nil || d.bytes+size > maxCachedBytes {
		d.series, d.bytes = make(map[string]telemetry.Reading, 1024), 0
	}
	d.series[string(s.key)] = series.reading
	d.bytes += size
	return series, nil
}

func readLabel(raw []byte) (telemetry.Label, error) {
	var l telemetry.Label
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return l, protowire.ParseError(n)
		}
		raw = raw[n:]
		if (num == labelName || num == labelValue) && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(raw)
			if n < 0 {
				return l, protowire.ParseError(n)
			}
			if num == labelName {
				l.Name = string(v)
			} else {
				l.Value = string(v)
			}
			raw = raw[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, raw); n < 0 {
			return l, protowire.ParseError(n)
		}
		raw = raw[n:]
	}
	return l, nil
}

// readSample reads a Sample message.
func readSample(raw []byte) (sample, error) {
	var smp sample
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return smp, protowire.ParseError(n)
		}
		raw = raw[n:]
		switch {
		case num == sampleValue && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(raw)
			if n < 0 {
				return smp, protowire.ParseError(n)
			}
			smp.value, raw = math.Float64frombits(v), raw[n:]
		case num == sampleTimestamp && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(raw)
			if n < 0 {
				return smp, protowire.ParseError(n)
			}
			smp.ts, raw = int64(v), raw[n:]
		default:
			if n = protowire.ConsumeFieldValue(num, typ, raw); n < 0 {
				return smp, protowire.ParseError(n)
			}
			raw = raw[n:]
		}
	}
	return smp, nil
}
