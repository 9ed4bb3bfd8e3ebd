package httpapi

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// The streamed listing is byte for byte what encoding/json makes of GPUList.
func TestWriteListIsTheJSONOfGPUList(t *testing.T) {
	t0 := time.Date(2025, 7, 18, 20, 42, 34, 0, time.UTC)
	gpus := []telemetry.GPUInfo{
		{GPU: telemetry.GPU{UUID: "GPU-1", Hostname: "h<1>&", Labels: map[string]string{"pod": "a\"b", "ns": "x"}}, FirstSeen: t0, LastSeen: t0},
		{GPU: telemetry.GPU{UUID: "GPU-2", Hostname: "h2", Index: 1}, Instances: []telemetry.GPUInfo{{GPU: telemetry.GPU{UUID: "GPU-2", Instance: "1"}}}},
	}
	for _, tc := range []struct {
		gpus []telemetry.GPUInfo
		next string
	}{{gpus, "ZzE6WyJoMiIsMSwiR1BVLTIiXQ"}, {nil, ""}, {gpus[:1], ""}} {
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		writeList(c, tc.gpus, func(g telemetry.GPUInfo) any { return toGPU(g) }, 2, tc.next)
		want := GPUList{Data: []GPU{}, Count: len(tc.gpus), Limit: 2, NextCursor: tc.next}
		for _, g := range tc.gpus {
			want.Data = append(want.Data, toGPU(g))
		}
		raw, err := json.Marshal(want)
		require.NoError(t, err)
		assert.Equal(t, string(raw), rec.Body.String())
		assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
		assert.True(t, json.Valid(rec.Body.Bytes()))
	}
}
