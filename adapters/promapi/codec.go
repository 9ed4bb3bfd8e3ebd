package promapi

import (
	"net/http"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/util/jsonutil"
)

// A query's answer is written by hand on a jsoniter stream, its numbers by the Prometheus
// project's own jsonutil — as Prometheus writes it, byte for byte. encoding/json through the
// promql types' MarshalJSON took more than half of a dashboard panel's time: it compacts
// the output of every point's MarshalJSON again (docs/performance.md).
var streams = jsoniter.ConfigCompatibleWithStandardLibrary

// writeQueryData writes a successful query's answer in Prometheus' envelope.
func writeQueryData(w http.ResponseWriter, d queryData) {
	s := streams.BorrowStream(nil)
	defer streams.ReturnStream(s)
	s.WriteRaw(`{"status":"success","data":{"resultType":`)
	s.WriteString(string(d.ResultType))
	s.WriteRaw(`,"result":`)
	switch v := d.Result.(type) {
	case promql.Matrix:
		writeArray(s, v, writeSeries)
	case promql.Vector:
		writeArray(s, v, writeSample)
	case promql.Scalar:
		writeFPoint(s, promql.FPoint{T: v.T, F: v.V})
	case promql.String:
		s.WriteArrayStart()
		jsonutil.MarshalTimestamp(v.T, s)
		s.WriteMore()
		s.WriteString(v.V)
		s.WriteArrayEnd()
	default:
		writeError(w, errorf(errInternal, "cannot encode a %s", d.ResultType))
		return
	}
	s.WriteRaw(`}`)
	for _, notes := range [...]struct {
		field string
		list  []string
	}{{"warnings", d.warnings}, {"infos", d.infos}} {
		if len(notes.list) > 0 {
			s.WriteMore()
			s.WriteObjectField(notes.field)
			writeArray(s, notes.list, func(s *jsoniter.Stream, v string) { s.WriteString(v) })
		}
	}
	s.WriteRaw(`}`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(s.Buffer())
}

// writeSeries writes {"metric":{…},"values":[…],"histograms":[…]}, each list only when it
// has points.
func writeSeries(s *jsoniter.Stream, series promql.Series) {
	s.WriteObjectStart()
	s.WriteObjectField("metric")
	writeLabels(s, series.Metric)
	if len(series.Floats) > 0 {
		s.WriteMore()
		s.WriteObjectField("values")
		writeArray(s, series.Floats, writeFPoint)
	}
	if len(series.Histograms) > 0 {
		s.WriteMore()
		s.WriteObjectField("histograms")
		writeArray(s, series.Histograms, func(s *jsoniter.Stream, p promql.HPoint) {
			s.WriteArrayStart()
			jsonutil.MarshalTimestamp(p.T, s)
			s.WriteMore()
			jsonutil.MarshalHistogram(p.H, s)
			s.WriteArrayEnd()
		})
	}
	s.WriteObjectEnd()
}

// writeSample writes {"metric":{…},"value":[t,"v"]} or, for a histogram, "histogram".
func writeSample(s *jsoniter.Stream, smp promql.Sample) {
	s.WriteObjectStart()
	s.WriteObjectField("metric")
	writeLabels(s, smp.Metric)
	s.WriteMore()
	if smp.H != nil {
		s.WriteObjectField("histogram")
		s.WriteArrayStart()
		jsonutil.MarshalTimestamp(smp.T, s)
		s.WriteMore()
		jsonutil.MarshalHistogram(smp.H, s)
		s.WriteArrayEnd()
	} else {
		s.WriteObjectField("value")
		writeFPoint(s, promql.FPoint{T: smp.T, F: smp.F})
	}
	s.WriteObjectEnd()
}

// writeArray writes [item, item, …].
func writeArray[T any](s *jsoniter.Stream, items []T, write func(*jsoniter.Stream, T)) {
	s.WriteArrayStart()
	for i, item := range items {
		if i > 0 {
			s.WriteMore()
		}
		write(s, item)
	}
	s.WriteArrayEnd()
}

func writeFPoint(s *jsoniter.Stream, p promql.FPoint) {
	s.WriteArrayStart()
	jsonutil.MarshalTimestamp(p.T, s)
	s.WriteMore()
	jsonutil.MarshalFloat(p.F, s)
	s.WriteArrayEnd()
}

func writeLabels(s *jsoniter.Stream, ls labels.Labels) {
	s.WriteObjectStart()
	first := true
	ls.Range(func(l labels.Label) {
		if !first {
			s.WriteMore()
		}
		first = false
		s.WriteObjectField(l.Name)
		s.WriteString(l.Value)
	})
	s.WriteObjectEnd()
}
