package telemetry

// MetricInfo describes a DCGM field.
type MetricInfo struct {
	Name        string
	Unit        string
	Description string
}

// dcgmFields describes the DCGM fields dcgm-exporter exports by default and a few common
// others (names and units as in DCGM's dcgm_fields.h). Metrics not listed are stored and
// served all the same, without a unit.
var dcgmFields = map[string]MetricInfo{
	"DCGM_FI_DEV_GPU_UTIL":                    {Unit: "%", Description: "GPU utilization"},
	"DCGM_FI_DEV_MEM_COPY_UTIL":               {Unit: "%", Description: "Memory utilization"},
	"DCGM_FI_DEV_ENC_UTIL":                    {Unit: "%", Description: "Encoder utilization"},
	"DCGM_FI_DEV_DEC_UTIL":                    {Unit: "%", Description: "Decoder utilization"},
	"DCGM_FI_DEV_FB_FREE":                     {Unit: "MiB", Description: "Framebuffer memory free"},
	"DCGM_FI_DEV_FB_USED":                     {Unit: "MiB", Description: "Framebuffer memory used"},
	"DCGM_FI_DEV_FB_RESERVED":                 {Unit: "MiB", Description: "Framebuffer memory reserved"},
	"DCGM_FI_DEV_FB_TOTAL":                    {Unit: "MiB", Description: "Framebuffer memory total"},
	"DCGM_FI_DEV_GPU_TEMP":                    {Unit: "°C", Description: "GPU temperature"},
	"DCGM_FI_DEV_MEMORY_TEMP":                 {Unit: "°C", Description: "Memory temperature"},
	"DCGM_FI_DEV_POWER_USAGE":                 {Unit: "W", Description: "Power draw"},
	"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION":    {Unit: "mJ", Description: "Total energy consumption since boot"},
	"DCGM_FI_DEV_SM_CLOCK":                    {Unit: "MHz", Description: "SM clock frequency"},
	"DCGM_FI_DEV_MEM_CLOCK":                   {Unit: "MHz", Description: "Memory clock frequency"},
	"DCGM_FI_DEV_PCIE_REPLAY_COUNTER":         {Unit: "count", Description: "PCIe replay counter"},
	"DCGM_FI_DEV_XID_ERRORS":                  {Unit: "xid", Description: "Last XID error"},
	"DCGM_FI_DEV_POWER_VIOLATION":             {Unit: "µs", Description: "Throttling duration due to power constraints"},
	"DCGM_FI_DEV_THERMAL_VIOLATION":           {Unit: "µs", Description: "Throttling duration due to thermal constraints"},
	"DCGM_FI_DEV_VGPU_LICENSE_STATUS":         {Unit: "", Description: "vGPU license status"},
	"DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": {Unit: "count", Description: "Rows remapped for uncorrectable errors"},
	"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS":   {Unit: "count", Description: "Rows remapped for correctable errors"},
	"DCGM_FI_DEV_ROW_REMAP_FAILURE":           {Unit: "", Description: "Whether remapping of rows has failed"},
	"DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL":      {Unit: "count", Description: "NVLink bandwidth counter, all lanes"},
	"DCGM_FI_PROF_GR_ENGINE_ACTIVE":           {Unit: "ratio", Description: "Ratio of time the graphics engine is active"},
	"DCGM_FI_PROF_SM_ACTIVE":                  {Unit: "ratio", Description: "Ratio of cycles an SM has at least one warp assigned"},
	"DCGM_FI_PROF_SM_OCCUPANCY":               {Unit: "ratio", Description: "Ratio of warps resident on an SM to the maximum"},
	"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE":         {Unit: "ratio", Description: "Ratio of cycles the tensor pipe is active"},
	"DCGM_FI_PROF_DRAM_ACTIVE":                {Unit: "ratio", Description: "Ratio of cycles the memory interface is active"},
	"DCGM_FI_PROF_PIPE_FP64_ACTIVE":           {Unit: "ratio", Description: "Ratio of cycles the FP64 pipe is active"},
	"DCGM_FI_PROF_PIPE_FP32_ACTIVE":           {Unit: "ratio", Description: "Ratio of cycles the FP32 pipe is active"},
	"DCGM_FI_PROF_PIPE_FP16_ACTIVE":           {Unit: "ratio", Description: "Ratio of cycles the FP16 pipe is active"},
	"DCGM_FI_PROF_PCIE_TX_BYTES":              {Unit: "B/s", Description: "PCIe transmit rate"},
	"DCGM_FI_PROF_PCIE_RX_BYTES":              {Unit: "B/s", Description: "PCIe receive rate"},
	"DCGM_FI_PROF_NVLINK_TX_BYTES":            {Unit: "B/s", Description: "NVLink transmit rate"},
	"DCGM_FI_PROF_NVLINK_RX_BYTES":            {Unit: "B/s", Description: "NVLink receive rate"},
}

// DescribeMetric returns what is known of a metric; Unit and Description are empty for a
// field not in the catalogue.
func DescribeMetric(name string) MetricInfo {
	info := dcgmFields[name]
	info.Name = name
	return info
}
