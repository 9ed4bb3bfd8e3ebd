package remotewrite

import (
	"errors"
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

// maxCachedSeries bounds the series cache; past it the cache starts afresh.
const maxCachedSeries = 1 << 17

// decoder reads WriteRequests with protowire, the protobuf module's wire-format reader,
// instead of unmarshalling them into prompb's types, which allocates every label of every
// series of every request: a series' labels are the same bytes from one request to the
// next, so the reading they make is looked up by those bytes and built once
// (docs/performance.md has the measurements). It is safe for concurrent use.
type decoder struct {
	mu     sync.RWMutex
	series map[string]cachedSeries // by the series' label fields, as sent
}

type cachedSeries struct {
	reading telemetry.Reading
	err     error // telemetry.ErrNoDevice, or no metric name
}

var errNoMetricName = errors.New("series has no __name__ label")

// scratch is one request's reusable buffers.
type scratch struct {
	key     []byte
	samples []sample
	labels  []telemetry.Label
}

type sample struct {
	value float64
	ts    int64
}

// decode appends the readings of a WriteRequest to out, in the request's order, and
// counts what it drops. An error means the request is not a WriteRequest.
func (d *decoder) decode(raw []byte, out []telemetry.Reading, counts *Stats, s *scratch) ([]telemetry.Reading, error) {
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return out, protowire.ParseError(n)
		}
		raw = raw[n:]
		if num == writeRequestTimeseries && typ == protowire.BytesType {
			ts, n := protowire.ConsumeBytes(raw)
			if n < 0 {
				return out, protowire.ParseError(n)
			}
			raw = raw[n:]
			var err error
			if out, err = d.timeSeries(ts, out, counts, s); err != nil {
				return out, err
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, raw)
		if n < 0 {
			return out, protowire.ParseError(n)
		}
		raw = raw[n:]
	}
	return out, nil
}

// timeSeries appends the readings of one TimeSeries message.
func (d *decoder) timeSeries(raw []byte, out []telemetry.Reading, counts *Stats, s *scratch) ([]telemetry.Reading, error) {
	s.key, s.samples = s.key[:0], s.samples[:0]
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return out, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, raw[n:])
		if m < 0 {
			return out, protowire.ParseError(m)
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
				return out, err
			}
			s.samples = append(s.samples, smp)
		}
	}
	if len(s.samples) == 0 {
		return out, nil
	}
	series, err := d.lookup(s)
	if err != nil {
		return out, err
	}
	if series.err != nil {
		if errors.Is(series.err, telemetry.ErrNoDevice) {
			counts.NoDevice += int64(len(s.samples))
		} else {
			counts.Rejected += int64(len(s.samples))
		}
		return out, nil
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
		out = append(out, r)
	}
	return out, nil
}

// lookup returns the reading of the series whose label fields are s.key, reading them the
// first time.
func (d *decoder) lookup(s *scratch) (cachedSeries, error) {
	d.mu.RLock()
	series, ok := d.series[string(s.key)]
	d.mu.RUnlock()
	if ok {
		return series, nil
	}
	s.labels = s.labels[:0]
	for raw := s.key; len(raw) > 0; { // well-formed: timeSeries consumed every field
		_, _, n := protowire.ConsumeTag(raw)
		body, m := protowire.ConsumeBytes(raw[n:])
		l, err := readLabel(body)
		if err != nil {
			return series, err
		}
		s.labels = append(s.labels, l)
		raw = raw[n+m:]
	}
	series.reading, series.err = telemetry.SeriesReading(s.labels)
	switch {
	case series.err != nil:
	case series.reading.Sample.Metric == "":
		series.err = errNoMetricName
	default:
		series.err = series.reading.CheckSeries() // text the store cannot keep
	}
	d.mu.Lock()
	if d.series == nil || len(d.series) >= maxCachedSeries {
		d.series = make(map[string]cachedSeries, 1024)
	}
	d.series[string(s.key)] = series
	d.mu.Unlock()
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
