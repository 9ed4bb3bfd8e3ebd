package telemetry

import (
	"errors"
	"strconv"
	"strings"
)

// Label is one name="value" pair of a series, as Prometheus and dcgm-exporter write them.
type Label struct {
	Name, Value string
}

// ErrNoDevice marks a series that names no GPU (no UUID label): up, node_exporter's series
// and the like, which a Prometheus forwards along with dcgm-exporter's. Sources drop and
// count them; they are not errors of the input.
var ErrNoDevice = errors.New("series names no GPU (no UUID label)")

// SeriesReading reads the labels of one series, named as dcgm-exporter names them, into a
// reading whose Time and Value the caller sets:
//
//	__name__                 Sample.Metric
//	UUID                     GPU.UUID (required, else ErrNoDevice, with the rest read still)
//	GPU_I_ID, GPU_I_PROFILE  GPU.Instance, GPU.InstanceProfile (a MIG instance)
//	gpu, device, modelName   GPU.Index, GPU.Device, GPU.ModelName
//	Hostname (or hostname)   GPU.Hostname; when absent, the host of the instance label
//	pci_bus_id               GPU.PCIBusID
//	DCGM_FI_DRIVER_VERSION   GPU.DriverVersion
//	container, pod, namespace  the sample's workload
//
// Every other label goes to GPU.Labels. A Prometheus that scrapes dcgm-exporter in
// Kubernetes renames the exporter's pod, namespace and container to exported_pod, … when
// they clash with its own target labels: the exported_ ones then name the workload and the
// others stay labels of the device.
func SeriesReading(labels []Label) (Reading, error) {
	var r Reading
	r.GPU.Index = -1
	var instance string
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
			r.Sample.Metric = l.Value
		case "UUID":
			r.GPU.UUID = l.Value
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
		case "Hostname", "hostname":
			if r.GPU.Hostname == "" {
				r.GPU.Hostname = l.Value
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
			if l.Name == "instance" {
				instance = l.Value
			}
			r.GPU.Labels = addLabel(r.GPU.Labels, l)
		}
	}
	if r.GPU.Hostname == "" && instance != "" {
		r.GPU.Hostname = instanceHost(instance)
	}
	r.Sample.GPU = r.GPU.Key()
	if r.GPU.UUID == "" {
		return r, ErrNoDevice // with what the labels do say, for a source that knows the GPU otherwise
	}
	return r, nil
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

// instanceHost is the host part of an instance label ("host-1:9400", "[::1]:9400").
func instanceHost(instance string) string {
	if i := strings.LastIndexByte(instance, ':'); i > 0 && !strings.Contains(instance[i:], "]") {
		instance = instance[:i]
	}
	return strings.Trim(instance, "[]")
}

// SeriesLabels is SeriesReading reversed: the labels of the series a sample belongs to,
// named as dcgm-exporter names them, in no particular order. Empty values are left out, as
// Prometheus leaves them out. A device's Hostname is always written as Hostname, also when
// the series it was read from said hostname or named it only by its instance.
func SeriesLabels(g GPU, s Sample) []Label {
	out := make([]Label, 0, 12+len(g.Labels))
	add := func(name, value string) {
		if value != "" {
			out = append(out, Label{name, value})
		}
	}
	add("__name__", s.Metric)
	add("UUID", g.UUID)
	add("GPU_I_ID", g.Instance)
	add("GPU_I_PROFILE", g.InstanceProfile)
	if g.Index >= 0 {
		add("gpu", strconv.Itoa(g.Index))
	}
	add("device", g.Device)
	add("modelName", g.ModelName)
	add("Hostname", g.Hostname)
	add("pci_bus_id", g.PCIBusID)
	add("DCGM_FI_DRIVER_VERSION", g.DriverVersion)
	add("container", s.Container)
	add("pod", s.Pod)
	add("namespace", s.Namespace)
	for name, value := range g.Labels {
		add(name, value)
	}
	return out
}
