package health

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

var t0 = time.Date(2025, 7, 18, 20, 0, 0, 0, time.UTC)

// series is a field's values a minute apart from t0.
func series(metric string, values ...float64) telemetry.Series {
	s := telemetry.Series{GPU: "GPU-1", Metric: metric}
	for i, v := range values {
		s.Points = append(s.Points, telemetry.Point{Time: t0.Add(time.Duration(i) * time.Minute).UnixMicro(), Value: v})
	}
	return s
}

func minute(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

type span struct {
	kind, reason string
	start, end   int // minutes
	ongoing      bool
	value        float64
}

func spansOf(events []telemetry.Event) []span {
	var out []span
	for _, e := range events {
		out = append(out, span{e.Kind, e.Reason, int(e.Start.Sub(t0).Minutes()), int(e.End.Sub(t0).Minutes()), e.Ongoing, e.Value})
	}
	return out
}

func TestXIDErrorsBecomeEventsByCode(t *testing.T) {
	got := spansOf(Detect(series(fieldXID, 0, 79, 79, 0, 0, 13, 48)))
	assert.Equal(t, []span{
		{KindXID, "79", 1, 3, false, 79},
		{KindXID, "13", 5, 6, false, 13}, // a new code is a new event
		{KindXID, "48", 6, 6, true, 48},
	}, got)
}

func TestECCCountersRiseIntoEvents(t *testing.T) {
	got := spansOf(Detect(series(fieldDBE, 4, 4, 6, 7, 7, 7, 9)))
	assert.Equal(t, []span{
		{KindECCDouble, "volatile", 2, 4, false, 3}, // 4 → 7
		{KindECCDouble, "volatile", 6, 6, true, 2},
	}, got, "the first sample has nothing to rise from")
	assert.Empty(t, Detect(series(fieldSBE, 5, 5, 0, 0)), "a reset is not an error")
}

func TestThrottleReasonsDecodedBitByBit(t *testing.T) {
	// 0x40 hardware thermal from minute 1 to 3; 0x4 power cap at 2; 0x1 (idle) never an event.
	got := spansOf(Detect(series(fieldClocksEvent, 1, 0x40, 0x44, 0x40, 0, 1)))
	assert.Equal(t, []span{
		{KindThrottle, "sw_power_cap", 2, 3, false, 0x44},
		{KindThrottle, "hw_thermal_slowdown", 1, 4, false, 0x40},
	}, got)
	assert.Equal(t, got, spansOf(Detect(series(fieldThrottle, 1, 0x40, 0x44, 0x40, 0, 1))), "the field's old name")
}

func TestRowRemapFailuresAndOtherFields(t *testing.T) {
	assert.Equal(t, []span{{KindRowRemap, "", 2, 3, true, 1}}, spansOf(Detect(series(fieldRowRemap, 0, 0, 1, 1))))
	assert.Empty(t, Detect(series("DCGM_FI_DEV_GPU_TEMP", 90, 95)))
	assert.Empty(t, Detect(series(fieldXID)))
}

func TestIdleSpansSplitByAllocation(t *testing.T) {
	s := series(UtilField, 50, 2, 1, 0, 40, 3)
	got := spansOf(Idle(s, 5))
	assert.Equal(t, []span{{KindIdle, "unallocated", 1, 4, false, 1}, {KindIdle, "unallocated", 5, 5, true, 3}}, got)
	s.Pod = "train"
	assert.Equal(t, "allocated", Idle(s, 5)[0].Reason)
}

func TestSettleEndsEventsWhereAnotherWorkloadGoesOn(t *testing.T) {
	held := series(UtilField, 1, 1, 1) // minutes 0–2 under a pod; the device goes on unheld
	held.Pod = "notebook"
	events := Idle(held, 5)
	require.Len(t, events, 1)
	require.True(t, events[0].Ongoing)
	times := []int64{minute(0).UnixMicro(), minute(1).UnixMicro(), minute(2).UnixMicro(), minute(3).UnixMicro()}
	Settle(events, times)
	assert.Equal(t, []span{{KindIdle, "allocated", 0, 3, false, 1}}, spansOf(events))

	last := Idle(held, 5)
	Settle(last, times[:3])
	assert.True(t, last[0].Ongoing, "nothing after it")
}

func TestFieldsOfKinds(t *testing.T) {
	assert.Equal(t, []string{fieldThrottle, fieldClocksEvent}, Fields([]string{KindThrottle}))
	assert.Equal(t, []string{fieldXID, fieldRowRemap, fieldRemapPending}, Fields([]string{KindXID}), "with what explains it")
	assert.Len(t, Fields(nil), len(fieldsRead))
}
