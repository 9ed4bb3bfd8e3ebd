package usage

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Efficiency: how well a workload uses the GPU it holds, from the profiling fields (DCGM's
// DCP fields), each as a share of the model's peak — the activity ratios are shares already,
// the PCIe and NVLink bytes a second are divided by the model's link speeds (models.json).

// The other profiling fields efficiency is read from.
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

// EfficiencyFields are the profiling fields a report averages where the exporter sends
// them, each as a share of the model's peak.
var EfficiencyFields = []string{EngineField, SMField, SMOccupancyField, TensorField, FP16Field, FP32Field, FP64Field, DRAMField,
	PCIeTxField, PCIeRxField, NVLinkTxField, NVLinkRxField}

// shareNames name the share of each of EfficiencyFields where a field name is too long:
// columns of tables and of CSV answers.
var shareNames = map[string]string{
	EngineField: "gr_engine_active", SMField: "sm_active", SMOccupancyField: "sm_occupancy", TensorField: "tensor_active",
	FP16Field: "fp16_active", FP32Field: "fp32_active", FP64Field: "fp64_active", DRAMField: "dram_active",
	PCIeTxField: "pcie_tx_share", PCIeRxField: "pcie_rx_share", NVLinkTxField: "nvlink_tx_share", NVLinkRxField: "nvlink_rx_share",
}

// ShareName is the short name of the share of one of EfficiencyFields: "sm_active",
// "pcie_tx_share" (of the link's speed).
func ShareName(field string) string { return shareNames[field] }

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

// efficiency is a tally's profiling fields as mean shares of peak, and its class: with no
// kernels and no workload holding the devices, idle.
func efficiency(t *Tally) (map[string]telemetry.Activity, string) {
	var shares map[string]telemetry.Activity
	for field, w := range t.Profiling {
		if w.Seconds > 0 {
			if shares == nil {
				shares = map[string]telemetry.Activity{}
			}
			shares[field] = w.Activity()
		}
	}
	peak := math.NaN()
	if t.Memory {
		peak = t.PeakMemory
	}
	class := Classify(t.Profiling[SMField].Mean(), t.Profiling[EngineField].Mean(), peak)
	if class == ClassHeldNoKernels && t.HeldSeconds == 0 {
		class = ClassIdle
	}
	return shares, class
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
