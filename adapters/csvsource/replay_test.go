package csvsource

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func TestTooManyReadingsToReplay(t *testing.T) {
	defer func(n int) { maxReplayed = n }(maxReplayed)
	maxReplayed = 3
	data := "metric_name,uuid,value\n" + strings.Repeat("M,GPU-a,1\n", 5)
	src := Bytes("big", []byte(data), Options{})
	for range 3 {
		n := 0
		stats, err := src.Scan(context.Background(), func(telemetry.Reading) error { n++; return nil })
		require.NoError(t, err)
		assert.Equal(t, 5, n)
		assert.Equal(t, telemetry.ScanStats{Rows: 5}, stats)
	}
	assert.Nil(t, src.replay.Load(), "parsed on every scan")
}
