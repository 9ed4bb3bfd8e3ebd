package telemetry

import (
	"cmp"
	"errors"
	"maps"
	"reflect"
	"strconv"
	"strings"
)

// Label is one name="value" pair of a series, as Prometheus and dcgm-exporter write them.
type Label struct {
	Name, Value string
}

// ErrNoDevice marks a series that names no GPU: no UUID or uuid label, nor a pci_bus_id or
// gpu label with a host to tell it apart (node_exporter's series and the like, which a
// Prometheus forwards along with dcgm-exporter's; a target's own up is kept, see
// TargetDevice). Sources drop and count them; they are not
// errors of the input.
var ErrNoDevice = errors.New("series names no GPU (no UUID, uuid, pci_bus_id or gpu label)")

// Where a device's identity (GPU.UUID) came from, in GPU.IDFrom: the strongest label the
// series had. A UUID survives a reboot, a driver reload and a move to another slot; a PCI bus
// ID names a slot of one host; a gpu index names the slot DCGM enumerated first, which can
// change when a GPU falls off the bus. Relabelled streams without UUID get the weaker ones.
const (
	IDFromUUID      = ""           // the UUID label
	IDFromLowerUUID = "uuid"       // dcgm-exporter 1.x's uuid label
	IDFromPCIBusID  = "pci_bus_id" // the host (Hostname, hostname or instance) and pci_bus_id
	IDFromIndex     = "gpu"        // the host and the gpu index
	// IDFromTarget marks no GPU but a scrape target, whose own series (up,
	// scrape_duration_seconds, scrape_samples_scraped) the scraper records as Prometheus
	// does: a device of the store that listings of GPUs leave out.
	IDFromTarget = "target"
)

// The series a scraper records of each target, with Prometheus' names and meaning.
const (
	MetricUp             = "up"                      // 1 when the scrape succeeded, else 0
	MetricScrapeDuration = "scrape_duration_seconds" // how long the scrape took
	MetricScrapeSamples  = "scrape_samples_scraped"  // samples the target exposed
)

// TargetDevice is the device a scrape target's own series belong to, labelled with the
// target's labels (instance, job, …) and nothing else.
func TargetDevice(labels map[string]string) GPU {
	return GPU{UUID: TargetKey(labels["instance"]), IDFrom: IDFromTarget, Index: -1, Labels: labels}
}

// TargetKey is the key of the device of the target whose instance label is instance: the
// series of a GPU scraped from it are stale at the target's first scrape after their last
// sample, as Prometheus' staleness markers make them.
func TargetKey(instance string) string { return "target:" + strings.ReplaceAll(instance, "/", "_") }

// IsTarget reports whether g is a scrape target's device rather than a GPU.
func (g GPU) IsTarget() bool { return g.IDFrom == IDFromTarget }

// FamilyLabels are the labels dcgm-exporter puts on some families only: XID errors carry
// err_code and err_msg, process fields DCGM_FI_PROCESS_NAME. A device keeps them in its
// Labels as FAMILY:name — a colon never stands in a label name — so that they go back on
// that family's series only.
var FamilyLabels = map[string]bool{"err_code": true, "err_msg": true, "DCGM_FI_PROCESS_NAME": true, "window_size_in_ms": true}

// FoldedLabels are labels that tell a family's series of one device apart, by family:
// dcgm-exporter's DCGM_EXP_XID_ERRORS_COUNT has a series per XID code seen in its window,
// labelled xid. The store keeps each as a metric of its own, the label folded into its name
// (FoldMetric), which the PromQL API unfolds: a series a code, as in Prometheus.
var FoldedLabels = map[string]string{"DCGM_EXP_XID_ERRORS_COUNT": "xid"}

// FoldMetric is the name the store keeps a family's series under whose folded label has
// value: DCGM_EXP_XID_ERRORS_COUNT:xid=79.
func FoldMetric(metric, value string) string {
	return metric + ":" + FoldedLabels[metric] + "=" + value
}

// UnfoldMetric returns the family and folded label of a name FoldMetric made, and false for
// any other name.
func UnfoldMetric(stored string) (metric string, folded Label, ok bool) {
	metric, rest, ok := strings.Cut(stored, ":")
	if !ok || FoldedLabels[metric] == "" {
		return stored, Label{}, false
	}
	name, value, ok := strings.Cut(rest, "=")
	if !ok || name != FoldedLabels[metric] {
		return stored, Label{}, false
	}
	return metric, Label{Name: name, Value: value}, true
}

// sameMap reports whether two maps are one.
func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// FamilyLabel is the key of a family's own label in GPU.Labels.
func FamilyLabel(metric, name string) string { return metric + ":" + name }

// SplitFamilyLabel returns the metric and label name of a key FamilyLabel made, and false
// for a device's own label. A label name has no colon; a metric's may (FoldMetric).
func SplitFamilyLabel(key string) (metric, name string, ok bool) {
	i := strings.LastIndexByte(key, ':')
	if i < 0 {
		return "", key, false
	}
	return key[:i], key[i+1:], true
}

// WithFamilyLabelsOf returns g with the family labels of o (another reading of the same
// device) that g lacks or holds otherwise: a batch describes a device once, and each of its
// families may bring its own labels. g's Labels are copied before they change, never shared.
func (g GPU) WithFamilyLabelsOf(o GPU) GPU {
	if len(o.Labels) == 0 || sameMap(g.Labels, o.Labels) {
		return g // the usual case, on every reading: no labels, or the same interned device
	}
	copied := false
	for name, value := range o.Labels {
		if !strings.Contains(name, ":") || g.Labels[name] == value {
			continue
		}
		if !copied {
			g.Labels = maps.Clone(g.Labels)
			if g.Labels == nil {
				g.Labels = map[string]string{}
			}
			copied = true
		}
		g.Labels[name] = value
	}
	return g
}

// SeriesReading reads the labels of one series, named as dcgm-exporter names them, into a
// reading whose Time and Value the caller sets:
//
//	__name__                 Sample.Metric (dcgm-exporter 1.x names become DCGM_FI_* ones)
//	UUID (or uuid)           GPU.UUID; without either, an identity from the host and
//	                         pci_bus_id, or the host and gpu (GPU.IDFrom says which), else
//	                         ErrNoDevice, with the rest read still
//	GPU_I_ID, GPU_I_PROFILE  GPU.Instance, GPU.InstanceProfile (a MIG instance)
//	gpu, device, modelName   GPU.Index, GPU.Device, GPU.ModelName
//	Hostname (or hostname)   GPU.Hostname, the label's name in GPU.HostnameLabel
//	pci_bus_id               GPU.PCIBusID
//	DCGM_FI_DRIVER_VERSION   GPU.DriverVersion
//	container, pod, namespace  the sample's workload
//	err_code, err_msg, …     GPU.Labels as FAMILY:name (FamilyLabels)
//	xid (of DCGM_EXP_XID_ERRORS_COUNT)  folded into Sample.Metric (FoldedLabels)
//
// A target's own up, scrape_duration_seconds and scrape_samples_scraped (with an instance
// label and no GPU's) read as its TargetDevice's.
//
// Every other label goes to GPU.Labels. Nothing is invented: a series without a host label
// has no Hostname. A Prometheus that scrapes dcgm-exporter in Kubernetes renames the
// exporter's pod, namespace and container to exported_pod, … when they clash with its own
// target labels: the exported_ ones then name the workload and the others stay labels of the
// device.
func SeriesReading(labels []Label) (Reading, error) {
	var r Reading
	r.GPU.Index = -1
	var instance, lowerUUID string
	var family []Label
	exported := false
	for _, l := range labels {
		if strings.HasPrefix(l.Name, "exported_") {
			switch l.Name {
			case "exported_pod", "exported_namespace", "exported_container":
				exported = true
			}
		}
	}
	for _, l := range labels {
		switch l.Name {
		case "__name__":
			r.Sample.Metric = MetricName(l.Value)
		case "UUID":
			r.GPU.UUID = l.Value
		case "uuid":
			lowerUUID = l.Value
		case "GPU_I_ID":
			r.GPU.Instance = l.Value
		case "GPU_I_PROFILE":
			r.GPU.InstanceProfile = l.Value
		case "gpu":
			if i, err := strconv.Atoi(l.Value); err == nil && i >= 0 {
				r.GPU.Index = i
			}
		case "device":
			r.GPU.Device = l.Value
		case "modelName":
			r.GPU.ModelName = l.Value
		case "Hostname":
			r.GPU.Hostname, r.GPU.HostnameLabel = l.Value, ""
		case "hostname":
			if r.GPU.Hostname == "" {
				r.GPU.Hostname, r.GPU.HostnameLabel = l.Value, "hostname"
			}
		case "pci_bus_id":
			r.GPU.PCIBusID = l.Value
		case "DCGM_FI_DRIVER_VERSION":
			r.GPU.DriverVersion = l.Value
		case "container", "pod", "namespace":
			if !exported {
				setWorkload(&r.Sample, l.Name, l.Value)
				continue
			}
			r.GPU.Labels = addLabel(r.GPU.Labels, l)
		case "exported_container", "exported_pod", "exported_namespace":
			setWorkload(&r.Sample, strings.TrimPrefix(l.Name, "exported_"), l.Value)
		default:
			if FamilyLabels[l.Name] {
				family = append(family, l)
				continue
			}
			if l.Name == "instance" {
				instance = l.Value
			}
			r.GPU.Labels = addLabel(r.GPU.Labels, l)
		}
	}
	if name := FoldedLabels[r.Sample.Metric]; name != "" {
		if value, ok := r.GPU.Labels[name]; ok {
			delete(r.GPU.Labels, name)
			r.Sample.Metric = FoldMetric(r.Sample.Metric, value)
		}
	}
	for _, l := range family {
		r.GPU.Labels = addLabel(r.GPU.Labels, Label{FamilyLabel(r.Sample.Metric, l.Name), l.Value})
	}
	host := r.GPU.Hostname
	if host == "" {
		host = instance // tells slots of different nodes apart; never shown as a host
	}
	switch {
	case r.GPU.UUID != "":
	case lowerUUID != "":
		r.GPU.UUID, r.GPU.IDFrom = lowerUUID, IDFromLowerUUID
	case r.GPU.PCIBusID != "" && host != "":
		r.GPU.UUID, r.GPU.IDFrom = "pci:"+host+":"+r.GPU.PCIBusID, IDFromPCIBusID
	case r.GPU.Index >= 0 && host != "":
		r.GPU.UUID, r.GPU.IDFrom = "gpu:"+host+":"+strconv.Itoa(r.GPU.Index), IDFromIndex
	}
	r.GPU.UUID = strings.ReplaceAll(r.GPU.UUID, "/", "_") // a slash separates a device key's instance
	if r.GPU.UUID == "" && targetMetrics[r.Sample.Metric] && instance != "" {
		// A target's own series, as a Prometheus sends them by remote_write.
		all := make(map[string]string, len(labels))
		for _, l := range labels {
			if l.Name != "__name__" && l.Value != "" {
				all[l.Name] = l.Value
			}
		}
		r = Reading{GPU: TargetDevice(all), Sample: Sample{Metric: r.Sample.Metric}}
	}
	r.Sample.GPU = r.GPU.Key()
	if r.GPU.UUID == "" {
		return r, ErrNoDevice // with what the labels do say, for a source that knows the GPU otherwise
	}
	return r, nil
}

// targetMetrics are the series of a target itself that the pipeline keeps.
var targetMetrics = map[string]bool{MetricUp: true, MetricScrapeDuration: true, MetricScrapeSamples: true}

// legacyNames maps dcgm-exporter 1.x's metric names (its 1.x-compatibility-metrics.csv)
// to the DCGM field names the pipeline reads; dcgm_fi_* names are the fields' own, lowercase.
var legacyNames = map[string]string{
	"dcgm_sm_clock": "DCGM_FI_DEV_SM_CLOCK", "dcgm_memory_clock": "DCGM_FI_DEV_MEM_CLOCK",
	"dcgm_memory_temp": "DCGM_FI_DEV_MEMORY_TEMP", "dcgm_gpu_temp": "DCGM_FI_DEV_GPU_TEMP",
	"dcgm_power_usage": "DCGM_FI_DEV_POWER_USAGE", "dcgm_total_energy_consumption": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
	"dcgm_pcie_replay_counter": "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
	"dcgm_gpu_utilization":     "DCGM_FI_DEV_GPU_UTIL", "dcgm_mem_copy_utilization": "DCGM_FI_DEV_MEM_COPY_UTIL",
	"dcgm_enc_utilization": "DCGM_FI_DEV_ENC_UTIL", "dcgm_dec_utilization": "DCGM_FI_DEV_DEC_UTIL",
	"dcgm_xid_errors":      "DCGM_FI_DEV_XID_ERRORS",
	"dcgm_power_violation": "DCGM_FI_DEV_POWER_VIOLATION", "dcgm_thermal_violation": "DCGM_FI_DEV_THERMAL_VIOLATION",
	"dcgm_sync_boost_violation": "DCGM_FI_DEV_SYNC_BOOST_VIOLATION", "dcgm_board_limit_violation": "DCGM_FI_DEV_BOARD_LIMIT_VIOLATION",
	"dcgm_low_util_violation": "DCGM_FI_DEV_LOW_UTIL_VIOLATION", "dcgm_reliability_violation": "DCGM_FI_DEV_RELIABILITY_VIOLATION",
	"dcgm_fb_free": "DCGM_FI_DEV_FB_FREE", "dcgm_fb_used": "DCGM_FI_DEV_FB_USED",
	"dcgm_ecc_sbe_volatile_total": "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "dcgm_ecc_dbe_volatile_total": "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
	"dcgm_ecc_sbe_aggregate_total": "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "dcgm_ecc_dbe_aggregate_total": "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
	"dcgm_retired_pages_sbe": "DCGM_FI_DEV_RETIRED_SBE", "dcgm_retired_pages_dbe": "DCGM_FI_DEV_RETIRED_DBE",
	"dcgm_retired_pages_pending":             "DCGM_FI_DEV_RETIRED_PENDING",
	"dcgm_nvlink_flit_crc_error_count_total": "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
	"dcgm_nvlink_data_crc_error_count_total": "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
	"dcgm_nvlink_replay_error_count_total":   "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
	"dcgm_nvlink_recovery_error_count_total": "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
	"dcgm_nvlink_bandwidth_total":            "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
}

// MetricName is the DCGM field name of a metric name: dcgm-exporter 1.x's names mapped, any
// other name as it is.
func MetricName(name string) string {
	if !strings.HasPrefix(name, "dcgm_") {
		return name
	}
	if field, ok := legacyNames[name]; ok {
		return field
	}
	if strings.HasPrefix(name, "dcgm_fi_") {
		return strings.ToUpper(name)
	}
	return name
}

func setWorkload(s *Sample, name, value string) {
	switch name {
	case "container":
		s.Container = value
	case "pod":
		s.Pod = value
	case "namespace":
		s.Namespace = value
	}
}

func addLabel(m map[string]string, l Label) map[string]string {
	if l.Value == "" { // Prometheus treats an empty label as an absent one
		return m
	}
	if m == nil {
		m = make(map[string]string, 4)
	}
	m[l.Name] = l.Value
	return m
}

// SeriesLabels is SeriesReading reversed: the labels of the series a sample belongs to,
// named as the exporter named them, in no particular order. Empty values are left out, as
// Prometheus leaves them out; an identity the exporter did not send (GPU.IDFrom pci_bus_id or
// gpu) is not a label; a family's own labels go on that family's series only.
func SeriesLabels(g GPU, s Sample) []Label {
	out := make([]Label, 0, 12+len(g.Labels))
	add := func(name, value string) {
		if value != "" {
			out = append(out, Label{name, value})
		}
	}
	if metric, folded, ok := UnfoldMetric(s.Metric); ok {
		add("__name__", metric)
		add(folded.Name, folded.Value)
	} else {
		add("__name__", s.Metric)
	}
	switch g.IDFrom {
	case IDFromUUID:
		add("UUID", g.UUID)
	case IDFromLowerUUID:
		add("uuid", g.UUID)
	}
	add("GPU_I_ID", g.Instance)
	add("GPU_I_PROFILE", g.InstanceProfile)
	if g.Index >= 0 {
		add("gpu", strconv.Itoa(g.Index))
	}
	add("device", g.Device)
	add("modelName", g.ModelName)
	add(cmp.Or(g.HostnameLabel, "Hostname"), g.Hostname)
	add("pci_bus_id", g.PCIBusID)
	add("DCGM_FI_DRIVER_VERSION", g.DriverVersion)
	add("container", s.Container)
	add("pod", s.Pod)
	add("namespace", s.Namespace)
	for name, value := range g.Labels {
		if family, own, scoped := SplitFamilyLabel(name); scoped {
			if family == s.Metric {
				add(own, value)
			}
			continue
		}
		add(name, value)
	}
	return out
}
