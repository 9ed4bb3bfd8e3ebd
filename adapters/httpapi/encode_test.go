package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func TestTelemetryPageEncodesLikeEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	values := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 87.5, 1e-7, -1e-7, 1.5e-6, 1e20, 1e21, -3.4e38, math.MaxFloat64,
		math.SmallestNonzeroFloat64, 123456789.123456789, 2147483647}
	strs := []string{"", "DCGM_FI_DEV_GPU_UTIL", `a"quote`, `back\slash`, "<tag>&", "tab\there", "naïve", "日本", "\x00", "\u2028"}
	metric := func(r *rand.Rand) string {
		if r.IntN(2) == 0 {
			return strs[r.IntN(len(strs))]
		}
		return strings.Clone(strs[r.IntN(len(strs))]) // an equal name in other memory
	}
	enc := new(pageEncoder) // one for every page, as the pool gives them out again
	for round := range 200 {
		p := TelemetryPage{UUID: strs[r.IntN(len(strs))], Limit: r.IntN(1001), Offset: r.IntN(50)}
		if round%2 == 0 {
			p.NextCursor = "djE6MTc1Mjg3MTM1NDAwMDAwMDo0"
		}
		var samples []telemetry.Sample
		for range r.IntN(20) {
			at := time.Unix(r.Int64N(8e9)-4e9, r.Int64N(1e9)*int64(r.IntN(2))).UTC() // before 1970 too, whole seconds too
			switch n := len(samples); {
			case n > 0 && r.IntN(3) == 0:
				at = samples[n-1].Time // metrics of one scrape share their time
			case n > 0 && r.IntN(2) == 0:
				at = samples[n-1].Time.Add(time.Duration(r.Int64N(int64(3 * time.Second)))) // stamped as processed
			case r.IntN(10) == 0:
				at = at.In(time.FixedZone("CEST", 2*3600))
			}
			samples = append(samples, telemetry.Sample{
				GPU:       p.UUID,
				Time:      at,
				Metric:    metric(r),
				Value:     values[r.IntN(len(values))] * float64(r.IntN(3)-1),
				Container: strs[r.IntN(len(strs))],
				Pod:       strs[r.IntN(len(strs))],
				Namespace: strs[r.IntN(len(strs))],
			})
		}
		if round%10 == 0 { // more names than the encoder remembers
			for i := range 2 * maxQuotedNames {
				samples = append(samples, telemetry.Sample{GPU: p.UUID, Metric: fmt.Sprintf("M<%d>", i%(maxQuotedNames+3))})
			}
		}
		enc.begin(p.UUID)
		p.Data = []Sample{}
		for _, smp := range samples {
			p.Data = append(p.Data, toSample(smp))
			enc.add(smp)
		}
		p.Count = len(samples)
		want, err := json.Marshal(p)
		require.NoError(t, err)
		require.Equal(t, string(want), string(enc.end(p)), "round %d", round)
	}
}

func TestAggregatePageEncodesLikeEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	names := []string{"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE", `a"quote`, "<tag>&", "naïve", ""}
	values := []float64{0, 1, 87.5, 1e-7, -3.4e38, 123456789.123456789, 1e21}
	for round := range 100 {
		p := AggregatePage{UUID: names[r.IntN(len(names))], Step: "1m0s", Agg: "avg", Data: []Bucket{}, Truncated: r.IntN(2) == 0,
			Resolution: []string{"raw", "5m", "1h"}[r.IntN(3)], Warnings: names[:r.IntN(3)]}
		var buckets []telemetry.Bucket
		start := time.Unix(r.Int64N(8e9)-4e9, 0).UTC()
		for i := range r.IntN(30) {
			at := start.Add(time.Duration(i/3) * time.Duration(1+r.Int64N(int64(90*time.Second)))) // sub-second steps too
			if r.IntN(10) == 0 {
				at = at.In(time.FixedZone("CEST", 2*3600))
			}
			bk := telemetry.Bucket{Start: at, Metric: names[r.IntN(len(names))], Value: values[r.IntN(len(values))], Count: r.Int64N(1000)}
			buckets = append(buckets, bk)
			p.Data = append(p.Data, toBucket(bk))
		}
		p.Count = len(buckets)
		want, err := json.Marshal(p)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendAggregatePage(nil, p, buckets)), "round %d", round)
	}

	// An average beyond float64 is null, where encoding/json fails.
	got := appendAggregatePage(nil, AggregatePage{UUID: "GPU-1", Step: "1m0s", Agg: "avg"},
		[]telemetry.Bucket{{Start: time.Unix(0, 0).UTC(), Metric: "M", Value: math.Inf(1), Count: 2}})
	require.True(t, json.Valid(got), string(got))
	require.Contains(t, string(got), `"value":null`)
}

func BenchmarkTelemetryPageEncoding(b *testing.B) {
	p := TelemetryPage{UUID: "GPU-5fd4f087-86f3-7a43-b711-4771313afc50", Count: 1000, Limit: 1000}
	var samples []telemetry.Sample
	metrics := []string{"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
		"DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
		"DCGM_FI_DEV_DEC_UTIL", "DCGM_FI_DEV_ENC_UTIL"}
	for i := range 1000 {
		value := float64(i * 7 % 100) // DCGM values are mostly whole; power is not
		if metrics[i%len(metrics)] == "DCGM_FI_DEV_POWER_USAGE" {
			value = 86.125 + float64(i)
		}
		samples = append(samples, telemetry.Sample{Time: time.Unix(1752871354+int64(i/10), 0).UTC(),
			Metric: metrics[i%len(metrics)], Value: value})
		p.Data = append(p.Data, toSample(samples[i]))
	}
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(p)
		}
	})
	b.Run("pageEncoder", func(b *testing.B) {
		enc := new(pageEncoder)
		for b.Loop() {
			enc.begin(p.UUID)
			for _, s := range samples {
				enc.add(s)
			}
			enc.end(p)
		}
	})
}

func TestTimeTextEveryMinuteAcrossHoursAndDays(t *testing.T) {
	var f timeText
	for _, start := range []time.Time{time.Date(2025, 12, 31, 22, 58, 30, 0, time.UTC), time.Date(1969, 12, 31, 23, 0, 0, 5, time.UTC)} {
		for i := range 200 {
			at := start.Add(time.Duration(i) * time.Minute)
			require.Equal(t, at.Format(time.RFC3339Nano), string(f.append(nil, at)))
		}
	}
}
