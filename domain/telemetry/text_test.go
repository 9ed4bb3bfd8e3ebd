package telemetry_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func TestCheckText(t *testing.T) {
	for _, ok := range []string{"", "GPU-5fd4f087-86f3-7a43-b711-4771313afc50", "dgx-a100-01.cluster.local",
		"NVIDIA H100 80GB HBM3", "équipe-ñ", "replacement \uFFFD char", strings.Repeat("a", 16)} {
		assert.NoError(t, telemetry.CheckText("f", ok, 16*4), "%q", ok)
	}
	for s, want := range map[string]string{
		"a\x00b":                "f: holds control character U+0000 (byte 1)",
		"tab\there":             "f: holds control character U+0009 (byte 3)",
		"del\x7f":               "f: holds control character U+007F (byte 3)",
		"c1\u0085":              "f: holds control character U+0085 (byte 2)",
		"bad\xffutf8":           "f: is not valid UTF-8 (byte 3)",
		"cut\xe2\x82":           "f: is not valid UTF-8 (byte 3)",
		strings.Repeat("a", 65): "f: is 65 bytes long, more than 64",
	} {
		err := telemetry.CheckText("f", s, 64)
		assert.ErrorIs(t, err, telemetry.ErrInvalid, "%q", s)
		assert.EqualError(t, err, want, "%q", s)
	}
}

func TestGPUValidateChecksEveryField(t *testing.T) {
	g := telemetry.GPU{UUID: "GPU-1", Hostname: "h", ModelName: "m", Labels: map[string]string{"job": "dcgm"}}
	assert.NoError(t, g.Validate())
	for name, bad := range map[string]func(*telemetry.GPU){
		"empty uuid":     func(g *telemetry.GPU) { g.UUID = "" },
		"long uuid":      func(g *telemetry.GPU) { g.UUID = strings.Repeat("f", telemetry.MaxUUIDLen+1) },
		"long hostname":  func(g *telemetry.GPU) { g.Hostname = strings.Repeat("h", telemetry.MaxHostnameLen+1) },
		"nul in model":   func(g *telemetry.GPU) { g.ModelName = "A\x00" },
		"label name":     func(g *telemetry.GPU) { g.Labels = map[string]string{"bad\n": "v"} },
		"label value":    func(g *telemetry.GPU) { g.Labels = map[string]string{"k": "\xff"} },
		"driver version": func(g *telemetry.GPU) { g.DriverVersion = "\x1b[0m" },
		"too many labels": func(g *telemetry.GPU) {
			g.Labels = map[string]string{}
			for i := range telemetry.MaxLabels + 1 {
				g.Labels[fmt.Sprint("l", i)] = "v"
			}
		},
	} {
		c := g
		bad(&c)
		assert.ErrorIs(t, c.Validate(), telemetry.ErrInvalid, name)
	}
}

func TestIsBlankByFieldType(t *testing.T) {
	for _, tc := range []struct {
		metric string
		v      float64
		want   bool
	}{
		{"DCGM_FI_DEV_GPU_TEMP", 2147483632, true},
		{"DCGM_FI_DEV_GPU_TEMP", 9223372036854775807, true},
		{"DCGM_FI_DEV_GPU_TEMP", 140737488355328, false}, // an integer field: the FP64 sentinel is a value
		{"DCGM_FI_DEV_GPU_TEMP", 2147483636, false},
		{"DCGM_FI_DEV_GPU_TEMP", 71, false},
		{"DCGM_FI_DEV_POWER_USAGE", 140737488355331, true},
		{"DCGM_FI_DEV_POWER_USAGE", 2147483632, false}, // a double field: int sentinels are values
		{"DCGM_FI_DEV_POWER_USAGE", 140737488355332, false},
		{"my_metric", 2147483633, true},
		{"my_metric", 140737488355329, true},
		{"my_metric", 140737488355328.5, false},
		{"my_metric", 3e14, false},
	} {
		assert.Equal(t, tc.want, telemetry.IsBlank(tc.metric, tc.v), "%s = %v", tc.metric, tc.v)
	}
}

func TestValidateAfterChecksWhatDiffersFromTheValidSample(t *testing.T) {
	now := time.Now()
	valid := telemetry.Sample{GPU: "GPU-1", Metric: "DCGM_FI_DEV_GPU_TEMP", Time: now, Value: 1, Pod: "p", Namespace: "ns"}
	require.NoError(t, valid.Validate())
	next := valid
	next.Metric, next.Time = "DCGM_FI_DEV_POWER_USAGE", now.Add(time.Second)
	assert.NoError(t, next.ValidateAfter(&valid))
	for name, bad := range map[string]func(*telemetry.Sample){
		"metric":    func(s *telemetry.Sample) { s.Metric = "A\x00" },
		"pod":       func(s *telemetry.Sample) { s.Pod = "\xff" },
		"container": func(s *telemetry.Sample) { s.Container = strings.Repeat("c", telemetry.MaxTextLen+1) },
		"device":    func(s *telemetry.Sample) { s.GPU = "GPU-\n" },
		"value":     func(s *telemetry.Sample) { s.Value = math.Inf(1) },
		"time":      func(s *telemetry.Sample) { s.Time = time.Time{} },
	} {
		c := next
		bad(&c)
		assert.ErrorIs(t, c.ValidateAfter(&valid), telemetry.ErrInvalid, name)
		assert.ErrorIs(t, c.Validate(), telemetry.ErrInvalid, name)
	}
}
