package health

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// explain detects the events of a device's series and explains them with the shipped
// catalog.
func explain(t *testing.T, list ...telemetry.Series) []telemetry.Event {
	t.Helper()
	fields := map[string][]telemetry.Series{}
	var events []telemetry.Event
	for _, s := range list {
		fields[s.Metric] = append(fields[s.Metric], s)
		events = append(events, Detect(s)...)
	}
	return Explain(events, fields, DefaultCatalog())
}

func TestAnXIDIsClassifiedWithItsStartAndCount(t *testing.T) {
	events := explain(t, series(fieldXID, 0, 79, 79, 79))
	require.Len(t, events, 1)
	e := events[0]
	assert.Equal(t, "79", e.Reason)
	assert.Equal(t, ClassHardware, e.Class)
	assert.Equal(t, ActionRebootNode, e.Action)
	assert.Equal(t, "GPU has fallen off the bus", e.Detail)
	assert.Equal(t, minute(1), e.Start)
	assert.Equal(t, minute(3), e.LastSeen)
	assert.Equal(t, 1, e.Count, "the gauge shows one occurrence however long it stays")
	assert.True(t, e.Ongoing)
	assert.Empty(t, e.Resolution)
}

func TestMemoryXIDsFollowTheRowRemapState(t *testing.T) {
	plain := explain(t, series(fieldXID, 0, 63, 63, 0))
	require.Len(t, plain, 1)
	assert.Equal(t, ActionNone, plain[0].Action, "a remap done: nothing to do")
	assert.Equal(t, ResolvedCleared, plain[0].Resolution)

	pending := explain(t, series(fieldXID, 0, 63, 63, 63), series(fieldRemapPending, 0, 0, 1, 1))
	xid := pending[slicesIndexKind(pending, KindXID)]
	assert.Equal(t, ActionResetGPU, xid.Action)
	assert.Contains(t, xid.Detail, "reset the GPU to apply it")
	assert.Equal(t, ActionResetGPU, pending[slicesIndexKind(pending, KindRemapPending)].Action)

	failed := explain(t, series(fieldXID, 0, 63, 63, 63), series(fieldRemapPending, 0, 1, 1, 1), series(fieldRowRemap, 0, 0, 0, 1))
	xid = failed[slicesIndexKind(failed, KindXID)]
	assert.Equal(t, ActionIsolate, xid.Action, "a failure outranks a pending remap")
	assert.Contains(t, xid.Detail, "take the GPU out of service")

	dbe := explain(t, series(fieldDBE, 0, 0, 2, 2), series(fieldRowRemap, 0, 0, 1, 1))
	assert.Equal(t, ActionIsolate, dbe[slicesIndexKind(dbe, KindECCDouble)].Action)
}

func slicesIndexKind(events []telemetry.Event, kind string) int {
	for i, e := range events {
		if e.Kind == kind {
			return i
		}
	}
	return -1
}

func TestXID162CancelsXID163(t *testing.T) {
	events := explain(t, series(fieldXID, 0, 163, 163, 162, 162, 0))
	require.Len(t, events, 2)
	assert.Equal(t, "163", events[0].Reason)
	assert.Equal(t, ResolvedCancelled, events[0].Resolution)
	assert.Equal(t, minute(3), events[0].End, "closed by the 162")
	assert.Equal(t, ActionNone, events[1].Action)
	assert.Equal(t, ResolvedCleared, events[1].Resolution)

	other := explain(t, series(fieldXID, 0, 163, 13))
	assert.Equal(t, ResolvedReplaced, other[0].Resolution, "another code does not cancel it")
}

func TestXID31WarnsOfProfilingFields(t *testing.T) {
	events := explain(t, series(fieldXID, 31))
	require.Len(t, events, 1)
	assert.Equal(t, ClassApp, events[0].Class)
	assert.Equal(t, ActionRestartApp, events[0].Action)
	assert.Contains(t, events[0].Detail, "profiling fields (DCGM_FI_PROF_*) may read 0")
}

func TestUnknownXIDsSaySo(t *testing.T) {
	events := explain(t, series(fieldXID, 999))
	require.Len(t, events, 1)
	assert.Empty(t, events[0].Action)
	assert.Equal(t, "not in the XID catalog", events[0].Detail)
}

func TestCountersCountErrorsAndTheirReset(t *testing.T) {
	events := explain(t, series(fieldSBE, 10, 12, 15, 0, 0), series(fieldSBEAgg, 100, 102, 105, 105, 105))
	require.Len(t, events, 1, "the aggregate counter's errors are the volatile one's")
	assert.Equal(t, 5, events[0].Count)
	assert.Equal(t, ResolvedReset, events[0].Resolution)
	assert.Equal(t, ActionNone, events[0].Action)

	agg := explain(t, series(fieldDBEAgg, 1, 1, 3))
	require.Len(t, agg, 1, "without the volatile counter, the aggregate one's")
	assert.Equal(t, "aggregate", agg[0].Reason)
	assert.Equal(t, ActionResetGPU, agg[0].Action)

	links := explain(t, series(fieldNVLinkRecov, 0, 1), series(fieldPCIeReplay, 5, 9))
	assert.Equal(t, ActionResetGPU, links[slicesIndexKind(links, KindNVLinkErrors)].Action)
	assert.Equal(t, 4, links[slicesIndexKind(links, KindPCIeReplay)].Count)
}

func TestThrottleReasonsAreClassifiedBySetter(t *testing.T) {
	events := explain(t, series(fieldClocksEvent, 0x44))
	require.Len(t, events, 2)
	for _, e := range events {
		want := map[string]string{"sw_power_cap": ClassDriver, "hw_thermal_slowdown": ClassHardware}[e.Reason]
		assert.Equal(t, want, e.Class, e.Reason)
		assert.Equal(t, ActionNone, e.Action)
	}
}

// The XID gauge keeps the last code: a code repeated while it holds it shows once. The XID
// count dcgm-exporter keeps in its window (DCGM_EXP_XID_ERRORS_COUNT, a series a code)
// shows each repeat: the gauge's event counts them all; a code the gauge never showed is an
// event of its own, counted.
func TestRepeatsOfAnXIDCountEveryOccurrence(t *testing.T) {
	gauge := series(fieldXID, 0, 79, 79, 79, 79, 0, 0)
	count79 := series(telemetry.FoldMetric(fieldXIDCount, "79"), 0, 1, 2, 2, 4, 4, 0) // 1, +1, +2: four in all
	count13 := series(telemetry.FoldMetric(fieldXIDCount, "13"), 0, 0, 1, 1, 0, 2, 2) // 1, then 2 more later
	events := explain(t, gauge, count79, count13)
	require.Len(t, events, 3)
	byReason := map[string][]telemetry.Event{}
	for _, e := range events {
		byReason[e.Reason] = append(byReason[e.Reason], e)
	}
	require.Len(t, byReason["79"], 1, "one event of the gauge, the count's folded into it")
	xid79 := byReason["79"][0]
	assert.Equal(t, fieldXID, xid79.Field)
	assert.Equal(t, 4, xid79.Count, "every occurrence")
	assert.Equal(t, ResolvedCleared, xid79.Resolution)
	assert.Equal(t, ActionRebootNode, xid79.Action)
	require.Len(t, byReason["13"], 2, "twice in the window")
	assert.Equal(t, 1, byReason["13"][0].Count)
	assert.Equal(t, 2, byReason["13"][1].Count)
	assert.Equal(t, ClassApp, byReason["13"][0].Class)
	assert.True(t, IsXIDCount(byReason["13"][0].Field))
}
