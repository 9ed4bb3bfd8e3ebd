package portstest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload/workloadtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// WorkloadStore is a store of samples and workload records under test.
type WorkloadStore interface {
	Store
	ports.WorkloadStore
}

// TestWorkloadStore runs the contract of ports.WorkloadStore, and the recorder over the
// store's samples: records equal the usage report of their holds. newStore returns an
// empty store private to the calling test.
func TestWorkloadStore(t *testing.T, newStore func(t *testing.T) WorkloadStore) {
	t.Run("RecordsEachIntervalOnce", func(t *testing.T) { recordsOnce(t, newStore(t)) })
	t.Run("ListsByFilterAndPages", func(t *testing.T) { listsWorkloads(t, newStore(t)) })
	t.Run("RecordsEqualTheUsageReport", func(t *testing.T) { recordsEqualUsage(t, newStore(t)) })
}

var workloadT0 = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)

func aRecord(pod string, start time.Time, hours float64) telemetry.Workload {
	w := telemetry.Workload{GPU: telemetry.GPU{UUID: "GPU-w1", Hostname: "node-1", ModelName: "NVIDIA H100 80GB HBM3"},
		Namespace: "ml", Pod: pod, Container: "main", Start: start, End: start.Add(time.Duration(hours * float64(time.Hour))),
		LastSeen: start.Add(time.Duration(hours*float64(time.Hour)) - 10*time.Second), Open: true,
		GPUHours: hours, UtilHours: hours, MeanUtil: 42.5, P95Util: 90, IdleHours: hours / 4, UtilSignal: usage.SignalUtil,
		EnergyKWh: 0.3 * hours, PeakMemory: 40960, Events: 2, Samples: 360,
		Profiling: map[string]telemetry.Activity{usage.SMField: {Mean: 0.37, Hours: hours}, usage.NVLinkRxField: {Mean: 0.125, Hours: hours / 2},
			usage.DRAMField: {Mean: 0, Hours: hours}}}
	w.UtilHistogram[0], w.UtilHistogram[90] = hours/4, hours*3/4
	return w
}

func recordsOnce(t *testing.T, s WorkloadStore) {
	ctx := context.Background()
	first, open, err := s.OpenWorkloads(ctx)
	require.NoError(t, err)
	assert.True(t, first.Through.IsZero(), "nothing recorded yet")
	assert.False(t, first.Now.IsZero(), "the store's clock")
	assert.Empty(t, open)

	t1, t2 := workloadT0.Add(time.Hour), workloadT0.Add(2*time.Hour)
	records := []telemetry.Workload{aRecord("a", workloadT0, 1)}
	_, ok, err := s.RecordWorkloads(ctx, first, t1, records, nil)
	require.NoError(t, err)
	require.True(t, ok)
	require.NotZero(t, records[0].ID, "the new record's ID is set")
	_, ok, err = s.RecordWorkloads(ctx, first, t1, []telemetry.Workload{aRecord("a", workloadT0, 1)}, nil)
	require.NoError(t, err)
	assert.False(t, ok, "a second first pass is not recorded")

	second, open, err := s.OpenWorkloads(ctx)
	require.NoError(t, err)
	assert.True(t, second.Through.Equal(t1), "through %s", second.Through)
	require.Len(t, open, 1)
	assertSameRecord(t, records[0], open[0])

	closed := open[0]
	closed.Open, closed.GPUHours, closed.End = false, 1.5, workloadT0.Add(90*time.Minute)
	_, ok, err = s.RecordWorkloads(ctx, second, t2, []telemetry.Workload{closed}, nil)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, err = s.RecordWorkloads(ctx, second, t2.Add(time.Hour), []telemetry.Workload{aRecord("b", t1, 1)}, nil)
	require.NoError(t, err)
	assert.False(t, ok, "a pass made from a cursor another pass moved is not recorded")

	third, open, err := s.OpenWorkloads(ctx)
	require.NoError(t, err)
	assert.True(t, third.Through.Equal(t2))
	assert.Empty(t, open)
	all, next, err := s.Workloads(ctx, telemetry.WorkloadQuery{Limit: 10})
	require.NoError(t, err)
	assert.Nil(t, next)
	require.Len(t, all, 1, "replaced, not added")
	assertSameRecord(t, closed, all[0])
}

func assertSameRecord(t *testing.T, want, got telemetry.Workload) {
	t.Helper()
	for _, p := range []*telemetry.Workload{&want, &got} { // NaN is not equal to itself
		for _, v := range []*float64{&p.MeanUtil, &p.P95Util, &p.PeakMemory} {
			if math.IsNaN(*v) {
				*v = -1
			}
		}
		p.Start, p.End, p.LastSeen = p.Start.UTC(), p.End.UTC(), p.LastSeen.UTC()
	}
	assert.Equal(t, want, got)
}

func listsWorkloads(t *testing.T, s WorkloadStore) {
	ctx := context.Background()
	var records []telemetry.Workload
	for i := range 25 {
		w := aRecord(fmt.Sprint("pod-", i), workloadT0.Add(time.Duration(i)*time.Hour), 2)
		w.Open = i >= 20
		if i%5 == 0 {
			w.Namespace = "batch"
		}
		if i%2 == 0 {
			w.GPU.UUID, w.GPU.Instance = "GPU-w2", "3"
		}
		records = append(records, w)
	}
	state, _, err := s.OpenWorkloads(ctx)
	require.NoError(t, err)
	_, ok, err := s.RecordWorkloads(ctx, state, workloadT0.Add(30*time.Hour), records, nil)
	require.NoError(t, err)
	require.True(t, ok)

	pods := func(q telemetry.WorkloadQuery) []string {
		t.Helper()
		var out []string
		for {
			page, next, err := s.Workloads(ctx, q)
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), q.Limit)
			for _, w := range page {
				out = append(out, w.Pod)
			}
			if next == nil {
				return out
			}
			q.After = next
		}
	}
	all := pods(telemetry.WorkloadQuery{Limit: 4})
	require.Len(t, all, 25, "pages hold every record once")
	assert.Equal(t, "pod-24", all[0], "latest end first")
	assert.Equal(t, "pod-0", all[24])
	assert.Equal(t, []string{"pod-20", "pod-15", "pod-10", "pod-5", "pod-0"}, pods(telemetry.WorkloadQuery{Namespace: "batch", Limit: 2}))
	assert.Equal(t, []string{"pod-24", "pod-23", "pod-22", "pod-21", "pod-20"}, pods(telemetry.WorkloadQuery{State: telemetry.WorkloadOpen, Limit: 10}))
	assert.Len(t, pods(telemetry.WorkloadQuery{State: telemetry.WorkloadClosed, Limit: 10}), 20)
	assert.Equal(t, []string{"pod-4", "pod-2"}, pods(telemetry.WorkloadQuery{GPU: "GPU-w2/3", Limit: 10,
		Range: telemetry.TimeRange{Start: workloadT0.Add(2*time.Hour + 30*time.Minute), End: workloadT0.Add(4*time.Hour + 30*time.Minute)}}),
		"holds overlapping the window, of one MIG instance")
	assert.Equal(t, []string{"pod-7"}, pods(telemetry.WorkloadQuery{Pod: "pod-7", Hostname: "node-1", Model: "NVIDIA H100 80GB HBM3", Limit: 10}))
	assert.Empty(t, pods(telemetry.WorkloadQuery{Hostname: "node-2", Limit: 10}))
}

// recordsEqualUsage stores a day of three GPUs — one whose pod hands it to another and goes
// silent, one time-sliced by two pods, one MIG-partitioned — has the recorder make records
// in passes, and compares every record with the usage report of its pod over the day.
func recordsEqualUsage(t *testing.T, s WorkloadStore) {
	ctx := context.Background()
	whole := telemetry.GPU{UUID: "GPU-rec-1", Hostname: "node-r", ModelName: "NVIDIA A100-SXM4-80GB"}
	sliced := telemetry.GPU{UUID: "GPU-rec-2", Hostname: "node-r", Index: 1, ModelName: "NVIDIA A100-SXM4-80GB"}
	mig := telemetry.GPU{UUID: "GPU-rec-3", Hostname: "node-r", Index: 2, ModelName: "NVIDIA A100-SXM4-80GB", Instance: "1", InstanceProfile: "3g.40gb"}
	mig2 := telemetry.GPU{UUID: "GPU-rec-3", Hostname: "node-r", Index: 2, ModelName: "NVIDIA A100-SXM4-80GB", Instance: "2", InstanceProfile: "4g.40gb"}
	flip := telemetry.GPU{UUID: "GPU-rec-4", Hostname: "node-r", Index: 3, ModelName: "NVIDIA A100-SXM4-80GB"}
	dual := telemetry.GPU{UUID: "GPU-rec-5", Hostname: "node-d", ModelName: "NVIDIA A100-SXM4-80GB"}
	free := telemetry.GPU{UUID: "GPU-rec-6", Hostname: "node-f", ModelName: "NVIDIA A100-SXM4-80GB"}
	gpus := []telemetry.GPU{whole, sliced, mig, mig2, flip, dual, free}
	const step = 30 * time.Second
	for b := 0; b < 6*120; b += 60 { // six hours at 30 s, in batches of 30 minutes
		batch := telemetry.Batch{ID: fmt.Sprint("rec-", b), GPUs: gpus}
		for i := b; i < b+60; i++ {
			at := workloadT0.Add(time.Duration(i) * step)
			add := func(gpu, metric string, v float64, ns, pod string) {
				batch.Samples = append(batch.Samples, telemetry.Sample{GPU: gpu, Metric: metric, Time: at, Value: v, Namespace: ns, Pod: pod, Container: "main"})
			}
			// whole: train-a for 100 min, then eval-b for 80, then nobody for 30, silent for an
			// hour, then train-a again.
			switch {
			case i < 200:
				add(whole.UUID, usage.UtilField, float64(i%100), "ml", "train-a")
				add(whole.UUID, usage.PowerField, 300+float64(i%7), "ml", "train-a")
				add(whole.UUID, usage.MemoryField, float64(1000+i), "ml", "train-a")
				add(whole.UUID, usage.SMField, 0.5, "ml", "train-a")
				add(whole.UUID, usage.NVLinkTxField, 75e9, "ml", "train-a") // a quarter of an A100 SXM's 300 GB/s
				if i == 100 || i == 101 {
					add(whole.UUID, "DCGM_FI_DEV_XID_ERRORS", 79, "ml", "train-a")
				}
			case i < 360:
				add(whole.UUID, usage.UtilField, 0, "ml", "eval-b")
				add(whole.UUID, usage.SMField, 0, "ml", "eval-b")
			case i < 420:
				add(whole.UUID, usage.UtilField, 0, "", "")
				add(whole.UUID, usage.SMField, 0, "", "")
			case i >= 540:
				add(whole.UUID, usage.UtilField, 77, "ml", "train-a")
			}
			// sliced: two pods at every scrape, all day.
			add(sliced.UUID, usage.UtilField, 60, "ml", "share-x")
			add(sliced.UUID, usage.UtilField, 60, "ml", "share-y")
			add(sliced.UUID, usage.PowerField, 200, "ml", "share-x")
			add(sliced.UUID, usage.PowerField, 200, "ml", "share-y")
			// MIG: engine activity only.
			add(mig.Key(), usage.EngineField, 0.25, "ml", "mig-p")
			add(mig2.Key(), usage.EngineField, 0.5, "batch", "mig-q")
			// flip: two pods taking turns every 10 minutes, several turns within a pass.
			add(flip.UUID, usage.UtilField, 40, "ml", []string{"flip-a", "flip-b"}[i/20%2])
			// free: held by no pod, no kernels.
			add(free.UUID, usage.UtilField, 0, "", "")
			add(free.UUID, usage.SMField, 0, "", "")
			// dual: two sources, one with the pod's labels, one without, 15 s apart.
			add(dual.UUID, usage.UtilField, 70, "ml", "dual-p")
			batch.Samples = append(batch.Samples, telemetry.Sample{GPU: dual.UUID, Metric: usage.UtilField, Time: at.Add(15 * time.Second), Value: 70})
		}
		write(t, s, batch)
	}
	// Passes of 37 minutes, not aligned to the batches or the samples.
	rec := workload.NewRecorder(query.NewFleet(s, s), s, s, workload.Config{Step: 37 * time.Minute, Settle: time.Minute},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	end := workloadT0.Add(6 * time.Hour)
	workloadtest.RecordAll(t, rec, end.Add(time.Hour))
	records, next, err := s.Workloads(ctx, telemetry.WorkloadQuery{Limit: 100})
	require.NoError(t, err)
	require.Nil(t, next)

	byPod := map[string][]telemetry.Workload{}
	for _, w := range records {
		byPod[w.Pod] = append(byPod[w.Pod], w)
	}
	require.Len(t, byPod["train-a"], 2, "train-a's second hold is a record of its own")
	first, again := byPod["train-a"][1], byPod["train-a"][0]
	assert.False(t, first.Open, "train-a went silent")
	assert.True(t, first.Start.Equal(workloadT0), "start %s", first.Start)
	assert.True(t, first.End.Equal(workloadT0.Add(100*time.Minute)), "end %s: its last sample stands until eval-b's first", first.End)
	assert.InDelta(t, 100/60.0, first.GPUHours, 1e-9)
	assert.Equal(t, 1, first.Events, "one XID 79, reported twice")
	assert.InDelta(t, 0.5, first.Profiling[usage.SMField].Mean, 1e-12)
	assert.InDelta(t, 0.25, first.Profiling[usage.NVLinkTxField].Mean, 1e-12, "75 GB/s of the A100's 300")
	assert.InDelta(t, 100/60.0, first.Profiling[usage.NVLinkTxField].Hours, 1e-9)
	assert.InDelta(t, 1199, first.PeakMemory, 0)
	assert.NotContains(t, first.Profiling, usage.TensorField, "no tensor field: not reported, not 0")
	assert.InDelta(t, 94, first.P95Util, 0, "0..99 twice: 95 % of the time at 94 or under")
	assert.InDelta(t, 1/100.0, first.IdleFraction(), 1e-9, "one in a hundred samples at 0")
	// Turns within a pass: a record per turn, each ten minutes but the last, still open.
	require.Len(t, byPod["flip-a"], 18)
	require.Len(t, byPod["flip-b"], 18)
	for _, w := range append(byPod["flip-a"], byPod["flip-b"]...) {
		if !w.Open {
			assert.InDelta(t, 1/6.0, w.GPUHours, 1e-9, "%s from %s", w.Pod, w.Start)
		}
	}
	assert.True(t, byPod["flip-b"][0].Open, "the last turn is flip-b's")
	// A device two sources report, one without the pod's labels: one record, of the pod's
	// share of the time.
	require.Len(t, byPod["dual-p"], 1)
	assert.True(t, byPod["dual-p"][0].Open)
	require.Len(t, byPod["eval-b"], 1)
	assert.False(t, byPod["eval-b"][0].Open, "the device reported nobody after eval-b")
	assert.InDelta(t, 1, byPod["eval-b"][0].IdleFraction(), 0)
	assert.True(t, again.Open, "still reporting at the end")

	// Every record equals the usage report of its pod over the time it held the device.
	fleet := query.NewFleet(s, s)
	for pod, list := range byPod {
		for _, w := range list {
			report, err := fleet.Usage(ctx, telemetry.UsageQuery{Range: telemetry.TimeRange{Start: w.Start, End: w.End}, By: telemetry.GroupPod,
				Hostname: w.GPU.Hostname})
			require.NoError(t, err)
			var u *telemetry.Usage
			for i := range report.Groups {
				if report.Groups[i].Group == w.Namespace+"/"+pod || report.Groups[i].Group == pod {
					u = &report.Groups[i]
				}
			}
			require.NotNil(t, u, "pod %s in %v", pod, report.Groups)
			assert.InDelta(t, u.GPUHours, w.GPUHours, 1e-9, pod)
			assert.InDelta(t, u.EnergyKWh, w.EnergyKWh, 1e-9, pod)
			assert.InDelta(t, u.MeanUtil, w.MeanUtil, 1e-9, pod)
			assert.Equal(t, u.Samples, w.Samples, pod)
		}
	}
	// Usage reports over long windows sum the recorded hours and read the samples for the
	// edges and what is not recorded yet: the same answer as the samples alone give — also
	// once samples arrive after their hours were recorded (a batch retried late): the
	// recorder finds them and computes those hours again.
	late := telemetry.GPU{UUID: "GPU-rec-late", Hostname: "node-r", Index: 3, ModelName: "NVIDIA A100-SXM4-80GB"}
	batch := telemetry.Batch{ID: "rec-late", GPUs: []telemetry.GPU{late}}
	for i := 250; i < 330; i++ {
		at := workloadT0.Add(time.Duration(i) * step)
		batch.Samples = append(batch.Samples,
			telemetry.Sample{GPU: late.UUID, Metric: usage.UtilField, Time: at, Value: 55, Namespace: "ml", Pod: "late-pod"},
			telemetry.Sample{GPU: late.UUID, Metric: usage.PowerField, Time: at, Value: 250, Namespace: "ml", Pod: "late-pod"})
	}
	write(t, s, batch)
	workloadtest.RecordAll(t, rec, end.Add(30*24*time.Hour))
	recorded := query.NewFleet(s, s).WithRecords(s)
	for _, w := range []telemetry.TimeRange{
		{Start: workloadT0, End: workloadT0.Add(6 * time.Hour)},
		{Start: workloadT0.Add(7*time.Minute + 13*time.Second), End: workloadT0.Add(6*time.Hour + 41*time.Minute)},
		{Start: workloadT0.Add(-3 * time.Hour), End: workloadT0.Add(9 * time.Hour)},
	} {
		for _, by := range []telemetry.Grouping{telemetry.GroupNamespace, telemetry.GroupPod, telemetry.GroupHost, telemetry.GroupGPU, telemetry.GroupNone} {
			q := telemetry.UsageQuery{Range: w, By: by}
			want, err := fleet.Usage(ctx, q)
			require.NoError(t, err)
			got, err := recorded.Usage(ctx, q)
			require.NoError(t, err)
			require.Len(t, got.Groups, len(want.Groups), "%s by %s", w, by)
			if by == telemetry.GroupPod {
				require.True(t, slices.ContainsFunc(want.Groups, func(u telemetry.Usage) bool { return u.Group == "ml/late-pod" }))
			}
			assert.Empty(t, got.Warnings)
			for i, u := range want.Groups {
				g := got.Groups[i]
				assert.Equal(t, u.Group, g.Group)
				assert.InDelta(t, u.GPUHours, g.GPUHours, 1e-9, "%s by %s: %s", w, by, u.Group)
				assert.InDelta(t, u.EnergyKWh, g.EnergyKWh, 1e-9, "%s by %s: %s", w, by, u.Group)
				assert.Equal(t, math.IsNaN(u.MeanUtil), math.IsNaN(g.MeanUtil))
				if !math.IsNaN(u.MeanUtil) {
					assert.InDelta(t, u.MeanUtil, g.MeanUtil, 1e-9, "%s by %s: %s", w, by, u.Group)
				}
				assert.Equal(t, u.PeakMemory == u.PeakMemory, g.PeakMemory == g.PeakMemory)
				if u.PeakMemory == u.PeakMemory {
					assert.Equal(t, u.PeakMemory, g.PeakMemory, "%s by %s: %s", w, by, u.Group)
				}
				assert.Equal(t, u.Samples, g.Samples, "%s by %s: %s", w, by, u.Group)
				assert.Equal(t, u.Devices, g.Devices, "%s by %s: %s", w, by, u.Group)
				assert.Equal(t, u.UtilSignals, g.UtilSignals, "%s by %s: %s", w, by, u.Group)
				assert.Equal(t, u.Class, g.Class, "%s by %s: %s", w, by, u.Group)
				require.ElementsMatch(t, slices.Collect(maps.Keys(u.Profiling)), slices.Collect(maps.Keys(g.Profiling)), "%s by %s: %s", w, by, u.Group)
				for field, a := range u.Profiling {
					assert.InDelta(t, a.Mean, g.Profiling[field].Mean, 1e-9, "%s by %s: %s %s", w, by, u.Group, field)
					assert.InDelta(t, a.Hours, g.Profiling[field].Hours, 1e-9, "%s by %s: %s %s", w, by, u.Group, field)
				}
			}
		}
	}

	// Efficiency over the day: eval-b held the GPU with no kernels; the half hour no pod held
	// it, its SMs idle too, is idle.
	report, err := recorded.Usage(ctx, telemetry.UsageQuery{Range: telemetry.TimeRange{Start: workloadT0, End: end}, By: telemetry.GroupPod,
		Hostname: whole.Hostname})
	require.NoError(t, err)
	classes := map[string]string{}
	for _, u := range report.Groups {
		classes[u.Group] = u.Class
	}
	assert.Equal(t, usage.ClassHeldNoKernels, classes["ml/eval-b"])
	assert.Equal(t, usage.ClassIdle, classes[""])
	assert.Equal(t, usage.ClassActive, classes["ml/train-a"])
	assert.Equal(t, usage.ClassNotReported, classes["ml/share-x"], "no SM activity, no graphics engine: nothing to judge by")
	byGPU, err := recorded.Usage(ctx, telemetry.UsageQuery{Range: telemetry.TimeRange{Start: workloadT0, End: end}, By: telemetry.GroupGPU,
		Hostname: free.Hostname})
	require.NoError(t, err)
	require.Len(t, byGPU.Groups, 1)
	assert.Equal(t, usage.ClassIdle, byGPU.Groups[0].Class, "a GPU no pod held, with no kernels, from the recorded hours")

	// Open holds are recorded up to the cursor: a minute (Settle) behind the last sample,
	// dual's at 5:59:45.
	state, _, err := s.OpenWorkloads(ctx)
	require.NoError(t, err)
	hours := state.Through.Sub(workloadT0).Hours()
	assert.InDelta(t, 6-1/60.0-0.25/60, hours, 1e-9)
	require.Len(t, byPod["share-x"], 1)
	assert.InDelta(t, hours/2, byPod["share-x"][0].GPUHours, 1e-9, "half of the time")
	require.Len(t, byPod["mig-p"], 1)
	assert.InDelta(t, hours*3/7, byPod["mig-p"][0].GPUHours, 1e-9, "3 of 7 slices")
	assert.InDelta(t, 25, byPod["mig-p"][0].MeanUtil, 1e-9, "engine activity × 100")
	assert.Equal(t, usage.SignalEngine, byPod["mig-p"][0].UtilSignal)
}
