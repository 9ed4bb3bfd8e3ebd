package promapi

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hand-written encoder says what the promql types' own MarshalJSON says, for every kind
// of result, awkward numbers and labels included — except that, as Prometheus' HTTP API,
// it writes values below 1e-6 or from 1e21 in exponent form.
func TestQueryDataEncodesAsThePromQLTypes(t *testing.T) {
	ls := labels.FromStrings("__name__", "DCGM_FI_DEV_GPU_TEMP", "Hostname", `host "a" <b> & ü`, "UUID", "GPU-1")
	points := []promql.FPoint{{T: 1752871354000, F: 42}, {T: 1752871354001, F: 0.1}, {T: -1500, F: math.NaN()},
		{T: 1752871354120, F: math.Inf(1)}, {T: 1752871354999, F: math.Inf(-1)}, {T: 9, F: math.Copysign(0, -1)}, {T: 10, F: 1e-6}, {T: 11, F: 1e20}}
	for name, v := range map[string]parser.Value{
		"matrix":       promql.Matrix{{Metric: ls, Floats: points}, {Metric: labels.FromStrings("a", "b"), Floats: points[:1]}},
		"empty matrix": promql.Matrix{},
		"vector":       promql.Vector{{Metric: ls, T: 1752871354123, F: 3.25}, {Metric: labels.EmptyLabels(), T: 5, F: math.NaN()}},
		"empty vector": promql.Vector{},
		"scalar":       promql.Scalar{T: 1752871354010, V: 2.5},
		"string":       promql.String{T: 1752871354000, V: `say "hi"`},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(success{Status: "success", Data: queryData{ResultType: v.Type(), Result: v}})
			require.NoError(t, err)
			rec := httptest.NewRecorder()
			writeQueryData(rec, queryData{ResultType: v.Type(), Result: v})
			assert.Equal(t, 200, rec.Code)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.JSONEq(t, string(want), rec.Body.String())
		})
	}
	rec := httptest.NewRecorder()
	writeQueryData(rec, queryData{ResultType: parser.ValueTypeVector, Result: promql.Vector{{T: 1, F: 1e-9}, {T: 2, F: 1e21}}})
	assert.JSONEq(t, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[0.001,"1e-09"]},{"metric":{},"value":[0.002,"1e+21"]}]}}`,
		rec.Body.String())
}
