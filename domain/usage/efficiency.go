package usage

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
)

// Efficiency: how well a workload uses the GPU it holds, from the profiling fields (DCGM's
// DCP fields), each as a share of the model's peak — the activity ratios are shares already,
// the PCIe and NVLink bytes a second are divided by the model's link speeds (models.json).

// The profiling fields an efficiency report reads besides ActivityFields.
const (
	SMOccupancyField = "DCGM_FI_PROF_SM_OCCUPANCY"
	FP16Field        = "DCGM_FI_PROF_PIPE_FP16_ACTIVE"
	FP32Field        = "DCGM_FI_PROF_PIPE_FP32_ACTIVE"
	FP64Field        = "DCGM_FI_PROF_PIPE_FP64_ACTIVE"
	PCIeTxField      = "DCGM_FI_PROF_PCIE_TX_BYTES"
	PCIeRxField      = "DCGM_FI_PROF_PCIE_RX_BYTES"
	NVLinkTxField    = "DCGM_FI_PROF_NVLINK_TX_BYTES"
	NVLinkRxField    = "DCGM_FI_PROF_NVLINK_RX_BYTES"
)

// EfficiencyFields are the fields an efficiency report averages, each as a share of peak.
var EfficiencyFields = []string{EngineField, SMField, SMOccupancyField, TensorField, FP16Field, FP32Field, FP64Field, DRAMField,
	PCIeTxField, PCIeRxField, NVLinkTxField, NVLinkRxField}

// Model is a GPU model's peaks.
type Model struct {
	Name string `json:"name"`
	// Match are substrings of dcgm-exporter's modelName that name the model; the longest
	// match among the models wins ("H100 PCIe" over "H100").
	Match      []string `json:"match"`
	PCIeGBps   float64  `json:"pcie_gbps"`   // per direction, GB/s (10⁹ bytes): x16 of its PCIe generation
	NVLinkGBps float64  `json:"nvlink_gbps"` // per direction, all links, GB/s; 0: none
}

//go:embed models.json
var modelsJSON []byte

var models = sync.OnceValue(func() []Model {
	var out []Model
	if err := json.Unmarshal(modelsJSON, &out); err != nil {
		panic(fmt.Sprintf("the shipped GPU models: %v", err)) // a defect of the build, caught by its test
	}
	return out
})

// ModelOf returns the model dcgm-exporter's modelName names, if the table knows it.
func ModelOf(modelName string) (Model, bool) {
	name := strings.ToLower(modelName)
	best, longest := Model{}, 0
	for _, m := range models() {
		for _, match := range m.Match {
			if len(match) > longest && strings.Contains(name, strings.ToLower(match)) {
				best, longest = m, len(match)
			}
		}
	}
	return best, longest > 0
}

// trafficPeak is the bytes a second a traffic field's share is of on a model: 0 for a field
// that is no traffic, -1 where the model or its link is not known.
func trafficPeak(model, field string) float64 {
	var gbps func(Model) float64
	switch field {
	case PCIeTxField, PCIeRxField:
		gbps = func(m Model) float64 { return m.PCIeGBps }
	case NVLinkTxField, NVLinkRxField:
		gbps = func(m Model) float64 { return m.NVLinkGBps }
	default:
		return 0
	}
	m, ok := ModelOf(model)
	if !ok || gbps(m) <= 0 {
		return -1
	}
	return gbps(m) * 1e9
}

// The classes of a holding's efficiency.
const (
	ClassActive         = "active"
	ClassHeldNoKernels  = "held_no_kernels"          // the SMs (or the graphics engine) next to never busy
	ClassMemoryHeldIdle = "memory_held_compute_idle" // memory held, the SMs seldom busy
	ClassNotReported    = "not_reported"             // neither SM activity nor the graphics engine reported: nothing to judge by
	ClassIdle           = "idle"                     // no kernels, and no workload holding the devices
)

// What the classes are judged by: the SMs busy under 1 % of the time is no kernels; under
// 5 % with a GiB or more of memory held, memory held for little compute.
const (
	noKernelsBelow    = 0.01
	computeIdleBelow  = 0.05
	memoryHeldFromMiB = 1024
)

// Efficiency is how well a group used what it held over a window.
type Efficiency struct {
	Group    string
	Devices  int
	GPUHours float64
	// Shares holds each of EfficiencyFields reported: its time-weighted mean as a share of
	// the model's peak, and the GPU-hours it was reported over.
	Shares     map[string]Weighted
	PeakMemory float64 // MiB, NaN when not reported
	// NotReported are the EfficiencyFields reported for none of the group's time.
	NotReported []string
	Class       string
}

// Efficiencies returns each group's efficiency, by name.
func (r *Report) Efficiencies() []Efficiency {
	var out []Efficiency
	for _, u := range r.Usage() {
		t := r.groups[u.Group]
		e := Efficiency{Group: u.Group, Devices: u.Devices, GPUHours: u.GPUHours, PeakMemory: u.PeakMemory, Shares: map[string]Weighted{}}
		for _, field := range EfficiencyFields {
			if w, ok := t.Activity[field]; ok && w.Seconds > 0 {
				e.Shares[field] = Weighted{Seconds: w.Seconds / 3600, Sum: w.Sum / 3600}
			} else {
				e.NotReported = append(e.NotReported, field)
			}
		}
		e.Class = classOf(e)
		out = append(out, e)
	}
	return out
}

// classOf judges a group by its SM activity, or its graphics engine's where SM activity is
// not reported; by neither, it is not reported, never idle.
func classOf(e Efficiency) string {
	mean := func(field string) float64 {
		if w, ok := e.Shares[field]; ok {
			return w.Mean()
		}
		return math.NaN()
	}
	return Classify(mean(SMField), mean(EngineField), e.PeakMemory)
}

// Classify is the class of a holding from the mean of its SM activity and of its graphics
// engine's (NaN where not reported; SM activity decides where both are) and its peak
// memory (MiB, NaN where not reported).
func Classify(sm, engine, peakMemory float64) string {
	busy := sm
	if math.IsNaN(busy) {
		busy = engine
	}
	switch {
	case math.IsNaN(busy):
		return ClassNotReported
	case busy < noKernelsBelow:
		return ClassHeldNoKernels
	case busy < computeIdleBelow && !math.IsNaN(peakMemory) && peakMemory >= memoryHeldFromMiB:
		return ClassMemoryHeldIdle
	}
	return ClassActive
}

// Models lists the models the table knows, by name.
func Models() []Model {
	out := slices.Clone(models())
	slices.SortFunc(out, func(a, b Model) int { return strings.Compare(a.Name, b.Name) })
	return out
}
