package telemetry

// MetricInfo describes a DCGM field.
type MetricInfo struct {
	Name        string
	Unit        string
	Description string
}

// valueKind is how DCGM holds a field's values (dcgm_fields.h: DCGM_FT_INT64 or
// DCGM_FT_DOUBLE), which decides what its "blank" sentinels are.
type valueKind uint8

const (
	unknownKind valueKind = iota
	integer
	double
)

// dcgmField is a DCGM field of the catalogue.
type dcgmField struct {
	kind valueKind
	MetricInfo
}

// dcgmFields describes the DCGM fields dcgm-exporter exports by default and a few common
// others (names, units and value types as in DCGM's dcgm_fields.h). Metrics not listed are
// stored and served all the same, without a unit.
var dcgmFields = map[string]dcgmField{
	"DCGM_FI_DEV_GPU_UTIL":                    {kind: integer, MetricInfo: MetricInfo{Unit: "%", Description: "GPU utilization"}},
	"DCGM_FI_DEV_MEM_COPY_UTIL":               {kind: integer, MetricInfo: MetricInfo{Unit: "%", Description: "Memory utilization"}},
	"DCGM_FI_DEV_ENC_UTIL":                    {kind: integer, MetricInfo: MetricInfo{Unit: "%", Description: "Encoder utilization"}},
	"DCGM_FI_DEV_DEC_UTIL":                    {kind: integer, MetricInfo: MetricInfo{Unit: "%", Description: "Decoder utilization"}},
	"DCGM_FI_DEV_FB_FREE":                     {kind: integer, MetricInfo: MetricInfo{Unit: "MiB", Description: "Framebuffer memory free"}},
	"DCGM_FI_DEV_FB_USED":                     {kind: integer, MetricInfo: MetricInfo{Unit: "MiB", Description: "Framebuffer memory used"}},
	"DCGM_FI_DEV_FB_RESERVED":                 {kind: integer, MetricInfo: MetricInfo{Unit: "MiB", Description: "Framebuffer memory reserved"}},
	"DCGM_FI_DEV_FB_TOTAL":                    {kind: integer, MetricInfo: MetricInfo{Unit: "MiB", Description: "Framebuffer memory total"}},
	"DCGM_FI_DEV_GPU_TEMP":                    {kind: integer, MetricInfo: MetricInfo{Unit: "°C", Description: "GPU temperature"}},
	"DCGM_FI_DEV_MEMORY_TEMP":                 {kind: integer, MetricInfo: MetricInfo{Unit: "°C", Description: "Memory temperature"}},
	"DCGM_FI_DEV_POWER_USAGE":                 {kind: double, MetricInfo: MetricInfo{Unit: "W", Description: "Power draw"}},
	"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION":    {kind: integer, MetricInfo: MetricInfo{Unit: "mJ", Description: "Total energy consumption since boot"}},
	"DCGM_FI_DEV_SM_CLOCK":                    {kind: integer, MetricInfo: MetricInfo{Unit: "MHz", Description: "SM clock frequency"}},
	"DCGM_FI_DEV_MEM_CLOCK":                   {kind: integer, MetricInfo: MetricInfo{Unit: "MHz", Description: "Memory clock frequency"}},
	"DCGM_FI_DEV_PCIE_REPLAY_COUNTER":         {kind: integer, MetricInfo: MetricInfo{Unit: "count", Description: "PCIe replay counter"}},
	"DCGM_FI_DEV_XID_ERRORS":                  {kind: integer, MetricInfo: MetricInfo{Unit: "xid", Description: "Last XID error"}},
	"DCGM_FI_DEV_POWER_VIOLATION":             {kind: integer, MetricInfo: MetricInfo{Unit: "µs", Description: "Throttling duration due to power constraints"}},
	"DCGM_FI_DEV_THERMAL_VIOLATION":           {kind: integer, MetricInfo: MetricInfo{Unit: "µs", Description: "Throttling duration due to thermal constraints"}},
	"DCGM_FI_DEV_VGPU_LICENSE_STATUS":         {kind: integer, MetricInfo: MetricInfo{Unit: "", Description: "vGPU license status"}},
	"DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": {kind: integer, MetricInfo: MetricInfo{Unit: "count", Description: "Rows remapped for uncorrectable errors"}},
	"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS":   {kind: integer, MetricInfo: MetricInfo{Unit: "count", Description: "Rows remapped for correctable errors"}},
	"DCGM_FI_DEV_ROW_REMAP_FAILURE":           {kind: integer, MetricInfo: MetricInfo{Unit: "", Description: "Whether remapping of rows has failed"}},
	"DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL":      {kind: integer, MetricInfo: MetricInfo{Unit: "count", Description: "NVLink bandwidth counter, all lanes"}},
	"DCGM_FI_PROF_GR_ENGINE_ACTIVE":           {kind: double, MetricInfo: MetricInfo{Unit: "ratio", Description: "Ratio of time the graphics engine is active"}},
	"DCGM_FI_PROF_SM_ACTIVE":                  {kind: double, MetricInfo: MetricInfo{Unit: "ratio", Description: "Ratio of cycles an SM has at least one warp assigned"}},
	"DCGM_FI_PROF_SM_OCCUPANCY":               {kind: double, MetricInfo: MetricInfo{Unit: "ratio", Description: "Ratio of warps resident on an SM to the maximum"}},
	"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE":         {kind: double, MetricInfo: MetricInfo{Unit: "ratio", Description: "Ratio of cycles the tensor pipe is active"}},
	"DCGM_FI_PROF_DRAM_ACTIVE":                {kind: double, MetricInfo: MetricInfo{Unit: "ratio", Description: "Ratio of cycles the memory interface is active"}},
	"DCGM_FI_PROF_PIPE_FP64_ACTIVE":           {kind: double, MetricInfo: MetricInfo{Unit: "ratio", Description: "Ratio of cycles the FP64 pipe is active"}},
	"DCGM_FI_PROF_PIPE_FP32_ACTIVE":           {kind: double, MetricInfo: MetricInfo{Unit: "ratio", Description: "Ratio of cycles the FP32 pipe is active"}},
	"DCGM_FI_PROF_PIPE_FP16_ACTIVE":           {kind: double, MetricInfo: MetricInfo{Unit: "ratio", Description: "Ratio of cycles the FP16 pipe is active"}},
	"DCGM_FI_PROF_PCIE_TX_BYTES":              {kind: integer, MetricInfo: MetricInfo{Unit: "B/s", Description: "PCIe transmit rate"}},
	"DCGM_FI_PROF_PCIE_RX_BYTES":              {kind: integer, MetricInfo: MetricInfo{Unit: "B/s", Description: "PCIe receive rate"}},
	"DCGM_FI_PROF_NVLINK_TX_BYTES":            {kind: integer, MetricInfo: MetricInfo{Unit: "B/s", Description: "NVLink transmit rate"}},
	"DCGM_FI_PROF_NVLINK_RX_BYTES":            {kind: integer, MetricInfo: MetricInfo{Unit: "B/s", Description: "NVLink receive rate"}},
}

// DescribeMetric returns what is known of a metric; Unit and Description are empty for a
// field not in the catalogue.
func DescribeMetric(name string) MetricInfo {
	info := dcgmFields[name].MetricInfo
	info.Name = name
	return info
}

// DCGM's sentinels (dcgm_structs.h): a value that says "blank", "not found", "not
// supported" or "no permission" instead of a reading. Integer fields carry the int32 or the
// int64 ones, double fields the FP64 ones, each an exact value.
var (
	int32Sentinels  = [...]float64{0x7ffffff0, 0x7ffffff1, 0x7ffffff2, 0x7ffffff3}
	int64Sentinels  = [...]float64{0x7ffffffffffffff0, 0x7ffffffffffffff1, 0x7ffffffffffffff2, 0x7ffffffffffffff3} // 2^63 as floats
	doubleSentinels = [...]float64{140737488355328.0, 140737488355329.0, 140737488355330.0, 140737488355331.0}     // 2^47 + 0…3
)

// IsBlank reports whether v is one of DCGM's sentinels for the metric's value type, as
// dcgm-exporter tells them (it skips such values): a field of the catalogue is matched
// against its own type's sentinels only, any other metric against all of them. Only exact
// sentinels match, so a real value near one — an energy or traffic counter past 2^47, an
// error counter at 2,147,483,636 — is a reading.
func IsBlank(metric string, v float64) bool {
	kind := dcgmFields[metric].kind
	if kind != double {
		for _, s := range int32Sentinels {
			if v == s {
				return true
			}
		}
		for _, s := range int64Sentinels {
			if v == s {
				return true
			}
		}
	}
	if kind != integer {
		for _, s := range doubleSentinels {
			if v == s {
				return true
			}
		}
	}
	return false
}
