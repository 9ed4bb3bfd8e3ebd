// Package dcgmsim simulates a fleet of dcgm-exporters: one exposition per host, in the
// Prometheus text format (written by prometheus/common/expfmt), with HELP and TYPE lines and
// the labels dcgm-exporter writes — gpu, UUID, pci_bus_id, device, modelName, GPU_I_PROFILE
// and GPU_I_ID for MIG instances, Hostname, DCGM_FI_DRIVER_VERSION, container, namespace and
// pod. The fleet is one scrape of a real one (the readings of a DCGM CSV); values move over
// time around the readings', so that a pipeline scraping it sees a live fleet.
package dcgmsim

import (
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Options shape the simulated fleet.
type Options struct {
	// MIG partitions the first GPU of the first host into this many MIG instances (at most
	// 7, as an A100 or H100 allows), each reporting every metric of its own.
	MIG int
	// Pods attributes every other GPU (and every MIG instance) to a pod, as dcgm-exporter
	// does in Kubernetes.
	Pods bool
	// Hosts is how many hosts the fleet has: the readings' own, then copies of them with
	// UUIDs and host names of their own, as many as it takes. 0 means the readings' own.
	Hosts int
	// Now is the clock values move by; nil means time.Now.
	Now func() time.Time
}

// Fleet is the simulated fleet.
type Fleet struct {
	opts  Options
	hosts []string
	by    map[string][]series // by host, in exposition order
	help  map[string]string
}

// series is one exported series and the value it moves around.
type series struct {
	metric string
	labels []*dto.LabelPair
	base   float64
	phase  float64
	// scale is 10^d for the d decimals of the base reading: values keep the precision DCGM
	// reports them in (power in watts to the milliwatt, say), as live ones would.
	scale float64
	ratio bool // a fraction of time (DCGM_FI_PROF_*), within 0–1
}

// decimals returns 10^d for the d decimals v is written with, at most 6.
func decimals(v float64) float64 {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	_, frac, _ := strings.Cut(s, ".")
	return math.Pow10(min(len(frac), 6))
}

// New builds a fleet from readings: the last reading of each series is its base value.
func New(readings []telemetry.Reading, opts Options) *Fleet {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.MIG = min(max(opts.MIG, 0), 7)
	readings = replicate(readings, opts.Hosts)
	f := &Fleet{opts: opts, by: map[string][]series{}, help: map[string]string{}}
	type key struct{ host, gpu, metric string }
	index := map[key]int{}
	gpuOrder := map[string]int{}
	for _, r := range readings {
		host := r.GPU.Hostname
		if _, ok := f.by[host]; !ok {
			f.hosts = append(f.hosts, host)
			f.by[host] = nil
		}
		if _, ok := gpuOrder[r.GPU.UUID]; !ok {
			gpuOrder[r.GPU.UUID] = len(gpuOrder)
		}
		f.help[r.Sample.Metric] = telemetry.DescribeMetric(r.Sample.Metric).Description
		instances := []string{""}
		if opts.MIG > 0 && host == f.hosts[0] && r.GPU.UUID == firstGPU(readings, host) {
			instances = instances[:0]
			for i := range opts.MIG {
				instances = append(instances, strconv.Itoa(i+1))
			}
		}
		for _, inst := range instances {
			k := key{host, telemetry.DeviceKey(r.GPU.UUID, inst), r.Sample.Metric}
			s := series{metric: r.Sample.Metric, base: r.Sample.Value, labels: labelsOf(r.GPU, inst, gpuOrder[r.GPU.UUID], opts.Pods),
				phase: phase(k.gpu + k.metric), scale: decimals(r.Sample.Value),
				ratio: telemetry.DescribeMetric(r.Sample.Metric).Unit == "ratio"}
			if i, ok := index[k]; ok {
				f.by[host][i] = s
				continue
			}
			index[k] = len(f.by[host])
			f.by[host] = append(f.by[host], s)
		}
	}
	for _, h := range f.hosts {
		slices.SortStableFunc(f.by[h], func(a, b series) int { return strings.Compare(a.metric, b.metric) })
	}
	return f
}

// replicate returns readings extended to hosts hosts by copies of the readings' fleet: copy
// k's host h is "h-k", and its GPUs get UUIDs derived from theirs and k.
func replicate(readings []telemetry.Reading, hosts int) []telemetry.Reading {
	own := map[string]bool{}
	for _, r := range readings {
		own[r.GPU.Hostname] = true
	}
	if hosts <= len(own) || len(own) == 0 {
		return readings
	}
	out := slices.Clone(readings)
	made := map[string]bool{}
	for k := 1; len(own)+len(made) < hosts; k++ {
		for _, r := range readings {
			host := fmt.Sprintf("%s-%d", r.GPU.Hostname, k)
			if !made[host] && len(own)+len(made) >= hosts {
				continue
			}
			made[host] = true
			r.GPU.Hostname = host
			r.GPU.UUID = copyUUID(r.GPU.UUID, k)
			r.Sample.GPU = telemetry.DeviceKey(r.GPU.UUID, r.GPU.Instance)
			out = append(out, r)
		}
	}
	return out
}

// copyUUID is a GPU-… UUID of the k-th copy of the GPU with this UUID.
func copyUUID(uuid string, k int) string {
	h := fnv.New128a()
	fmt.Fprintf(h, "%s/%d", uuid, k)
	b := h.Sum(nil)
	return fmt.Sprintf("GPU-%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func firstGPU(readings []telemetry.Reading, host string) string {
	for _, r := range readings {
		if r.GPU.Hostname == host {
			return r.GPU.UUID
		}
	}
	return ""
}

// labelsOf writes a device's labels in dcgm-exporter's order.
func labelsOf(g telemetry.GPU, instance string, n int, pods bool) []*dto.LabelPair {
	var ls []*dto.LabelPair
	add := func(name, value string) {
		ls = append(ls, &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)})
	}
	index := max(g.Index, 0)
	add("gpu", strconv.Itoa(index))
	add("UUID", g.UUID)
	add("pci_bus_id", fmt.Sprintf("00000000:%02X:00.0", 0x07+16*index))
	device := g.Device
	if device == "" {
		device = "nvidia" + strconv.Itoa(index)
	}
	add("device", device)
	add("modelName", g.ModelName)
	if instance != "" {
		add("GPU_I_PROFILE", "1g.10gb")
		add("GPU_I_ID", instance)
	}
	add("Hostname", g.Hostname)
	add("DCGM_FI_DRIVER_VERSION", g.DriverVersion)
	container, namespace, pod := "", "", ""
	if pods && (instance != "" || n%2 == 0) {
		container, namespace = "trainer", []string{"team-a", "team-b", "research"}[n%3]
		pod = fmt.Sprintf("train-%d", n)
		if instance != "" {
			pod += "-mig-" + instance
		}
	}
	add("container", container)
	add("namespace", namespace)
	add("pod", pod)
	return ls
}

func phase(s string) float64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return float64(h.Sum64()%6283) / 1000
}

// Hosts lists the fleet's hosts, in the readings' order.
func (f *Fleet) Hosts() []string { return f.hosts }

// Series is how many series a host exports.
func (f *Fleet) Series(host string) int { return len(f.by[host]) }

// Handler serves host's exposition on every path.
func (f *Fleet) Handler(host string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := expfmt.NewFormat(expfmt.TypeTextPlain)
		w.Header().Set("Content-Type", string(format))
		enc := expfmt.NewEncoder(w, format)
		for _, mf := range f.families(host, f.opts.Now()) {
			if err := enc.Encode(mf); err != nil {
				return // the scraper went away
			}
		}
	})
}

// families is host's exposition at time now.
func (f *Fleet) families(host string, now time.Time) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	var mf *dto.MetricFamily
	for _, s := range f.by[host] {
		if mf == nil || mf.GetName() != s.metric {
			typ := dto.MetricType_GAUGE
			if counter(s.metric) {
				typ = dto.MetricType_COUNTER
			}
			help := f.help[s.metric]
			if help == "" {
				help = s.metric
			}
			mf = &dto.MetricFamily{Name: proto.String(s.metric), Help: proto.String(help), Type: typ.Enum()}
			out = append(out, mf)
		}
		v := s.at(now)
		m := &dto.Metric{Label: s.labels}
		if mf.GetType() == dto.MetricType_COUNTER {
			m.Counter = &dto.Counter{Value: proto.Float64(v)}
		} else {
			m.Gauge = &dto.Gauge{Value: proto.Float64(v)}
		}
		mf.Metric = append(mf.Metric, m)
	}
	return out
}

// counter reports whether dcgm-exporter exports the field as a counter.
func counter(metric string) bool {
	switch metric {
	case "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
		"DCGM_FI_DEV_POWER_VIOLATION", "DCGM_FI_DEV_THERMAL_VIOLATION":
		return true
	}
	return false
}

// at is the series' value at t: counters grow, gauges swing around their base over five
// minutes, with as many decimals as the base (whole numbers staying whole), percentages
// within 0–100 and ratios (DCGM_FI_PROF_*) within 0–1.
func (s series) at(t time.Time) float64 {
	secs := float64(t.UnixMilli()) / 1000
	if counter(s.metric) {
		return math.Floor(s.base + secs*math.Max(math.Abs(s.base)/1e6, 1))
	}
	floor, top := 2.0, math.Inf(1) // the swing's least amplitude, and the largest value
	switch {
	case s.ratio:
		floor, top = 0.02, 1
	case strings.HasSuffix(s.metric, "_UTIL"):
		top = 100
	}
	amp := math.Max(math.Abs(s.base)*0.1, floor)
	v := s.base + amp*math.Sin(2*math.Pi*secs/300+s.phase)
	v = math.Round(v*s.scale) / s.scale
	return math.Min(math.Max(v, 0), top)
}
