// Package dcgmsim simulates a fleet of dcgm-exporters: one exposition per host, in the
// Prometheus text format (written by prometheus/common/expfmt), with HELP and TYPE lines and
// the labels dcgm-exporter writes — gpu, UUID, pci_bus_id, device, modelName, GPU_I_PROFILE
// and GPU_I_ID for MIG instances, Hostname, DCGM_FI_DRIVER_VERSION, container, namespace and
// pod. The fleet is one scrape of a real one (the readings of a DCGM CSV); values move over
// time around the readings', so that a pipeline scraping it sees a live fleet.
//
// It shows what real fleets do: MIG instances that report DCGM_FI_PROF_GR_ENGINE_ACTIVE and
// no DCGM_FI_DEV_GPU_UTIL; a GPU time-sliced by several pods, reported once per pod; a pod
// holding two GPUs; XID errors with err_code and err_msg; and, on a clock of their own,
// planted problems: a GPU held by a notebook with no kernels, XID 79 and hardware thermal
// throttling on another, Xid 163 cancelled by 162 on a third, correctable ECC errors
// climbing at 17,700 a second on a fourth while every other GPU counts none, and a host
// whose exporter sends no profiling field. Optionally one line whose value is not a number,
// as dcgm-exporter before 4.6 writes for fields it cannot read.
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
	// TimeSliced is how many pods share the second host's first GPU (time-slicing), each
	// reported apart with the same values; 0 or 1 shares none. With Pods only.
	TimeSliced int
	// BadLine adds to the first host's exposition one line whose value is not a number.
	BadLine bool
	// Health adds to every GPU the XID errors, clock throttle reasons and correctable ECC
	// errors of dcgm-exporter's default fields, and SM and graphics engine activity where
	// the readings have none (but on the sixth host, whose exporter sends no profiling
	// field), with the planted problems.
	Health bool
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
	ratio bool  // a fraction of time (DCGM_FI_PROF_*), within 0–1
	plant plant // a planted problem, or none
}

// plant is a problem the simulator plants on a series, on a clock of the hour: a GPU held
// idle, with no kernels, for the first 45 minutes of every hour; XID 79 from minute 10 to
// 15 and 40 to 45 and hardware thermal throttling from minute 20 to 30 on another; Xid 163
// from minute 5 to 20, then 162, which cancels it, to minute 25, on a third; correctable
// ECC errors climbing on a fourth. The faulty GPU's XID count (DCGM_EXP_XID_ERRORS_COUNT)
// shows Xid 79 again each minute of its spans, and Xid 13 all along.
type plant int

const (
	plantNone plant = iota
	plantIdle
	plantXID      // an XID series: 0, or 79 when planted on the GPU
	plantXIDHere  // the XID series of the GPU with the planted XIDs
	plantThrottle // a throttle-reasons series: 0, or hw_thermal_slowdown when planted
	plantThrottleHere
	plantXIDCancelled // the XID series of the GPU whose Xid 163 a 162 cancels
	plantSBE          // a correctable ECC errors counter: 0
	plantSBEClimbing  // the counter of the GPU whose errors climb
	plantIdleActivity // an activity ratio of the GPU held with no kernels
	plantXIDCount13   // the faulty GPU's count of Xid 13 in the exporter's window: 1 to 3, always some
	plantXIDCount79   // its count of Xid 79: each minute of its planted spans another
)

// sbeClimbing is how many correctable ECC errors a second the failing GPU counts: as many as
// one GB200 GPU did under load while DCGM called it healthy (NVIDIA/DCGM #313).
const sbeClimbing = 17700

// The fields the simulator adds to every GPU, which dcgm-exporter's default set has.
const (
	xidField      = "DCGM_FI_DEV_XID_ERRORS"
	throttleField = "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"
	sbeField      = "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"
	xidCountField = "DCGM_EXP_XID_ERRORS_COUNT" // a series a code seen in the window, labelled xid
	utilField     = "DCGM_FI_DEV_GPU_UTIL"
	engineField   = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
	smField       = "DCGM_FI_PROF_SM_ACTIVE"
	hwThermal     = 0x40 // DCGM's hardware thermal slowdown bit of the throttle reasons
)

// workload is a holder of a GPU.
type workload struct{ container, namespace, pod string }

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
	type key struct{ host, gpu, metric, pod string }
	index := map[key]int{}
	gpuOrder := map[string]int{}
	devices := map[string]telemetry.GPU{} // by UUID, for the fields added to each
	add := func(host string, k key, s series) {
		if i, ok := index[k]; ok {
			f.by[host][i] = s
			return
		}
		index[k] = len(f.by[host])
		f.by[host] = append(f.by[host], s)
	}
	has := map[string]map[string]bool{} // by UUID: the metrics its readings have
	util := map[string]float64{}        // by UUID: its utilisation reading (%)
	for _, r := range readings {
		host := r.GPU.Hostname
		if _, ok := f.by[host]; !ok {
			f.hosts = append(f.hosts, host)
			f.by[host] = nil
		}
		if _, ok := gpuOrder[r.GPU.UUID]; !ok {
			gpuOrder[r.GPU.UUID] = len(gpuOrder)
			devices[r.GPU.UUID] = r.GPU
			has[r.GPU.UUID] = map[string]bool{}
		}
		has[r.GPU.UUID][r.Sample.Metric] = true
		if r.Sample.Metric == utilField {
			util[r.GPU.UUID] = r.Sample.Value
		}
	}
	roles := f.roles(readings)
	for _, r := range readings {
		host, n := r.GPU.Hostname, gpuOrder[r.GPU.UUID]
		role := roles[r.GPU.UUID]
		f.help[r.Sample.Metric] = telemetry.DescribeMetric(r.Sample.Metric).Description
		instances := []string{""}
		if role.mig {
			instances = instances[:0]
			for i := range opts.MIG {
				instances = append(instances, strconv.Itoa(i+1))
			}
		}
		for _, inst := range instances {
			metric, base := r.Sample.Metric, r.Sample.Value
			if inst != "" && metric == utilField { // MIG instances report engine activity instead
				metric, base = engineField, math.Round(base)/100
				f.help[metric] = telemetry.DescribeMetric(metric).Description
			}
			for _, w := range f.holders(role, inst, n) {
				k := key{host, telemetry.DeviceKey(r.GPU.UUID, inst), metric, w.pod}
				s := series{metric: metric, base: base, labels: labelsOf(r.GPU, inst, w),
					phase: phase(k.gpu + k.metric), scale: decimals(base),
					ratio: telemetry.DescribeMetric(metric).Unit == "ratio"}
				if metric == utilField && role.idle {
					s.plant = plantIdle
				}
				add(host, k, s)
			}
		}
	}
	// XID errors and throttle reasons, once for each GPU, held by whoever holds it.
	for uuid, g := range devices {
		if !opts.Health {
			break
		}
		role := roles[uuid]
		holder := workload{}
		if hs := f.holders(role, "", gpuOrder[uuid]); len(hs) == 1 && !role.mig {
			holder = hs[0]
		}
		xid, throttle, sbe := plantXID, plantThrottle, plantSBE
		switch {
		case role.faulty:
			xid, throttle = plantXIDHere, plantThrottleHere
		case role.cancelled:
			xid = plantXIDCancelled
		case role.climbing:
			sbe = plantSBEClimbing
		}
		type field struct {
			name     string
			plant    plant
			activity bool // a ratio around base, as the readings' fields: once per holder
			base     float64
		}
		fields := []field{{xidField, xid, false, 0}, {throttleField, throttle, false, 0}, {sbeField, sbe, false, 0}}
		if !role.mig && !role.noProfiling { // a partitioned GPU's instances report the engine
			activity := plantNone
			if role.idle {
				activity = plantIdleActivity
			}
			// As busy as its utilisation says (a GPU reading 0 % runs no kernels), the engine
			// busy a little more of the time than the SMs.
			sm, engine := 0.5, 0.6
			if u, ok := util[uuid]; ok {
				sm, engine = 0.85*u/100, 0.95*u/100
			}
			for _, a := range []field{{smField, activity, true, sm}, {engineField, activity, true, engine}} {
				if !has[uuid][a.name] {
					fields = append(fields, a)
				}
			}
		}
		if role.faulty { // the repeats the XID gauge hides, as dcgm-exporter's XID count shows them
			for _, c := range []struct {
				code  string
				plant plant
			}{{"13", plantXIDCount13}, {"79", plantXIDCount79}} {
				f.help[xidCountField] = "Count of XID errors within the user-specified time window"
				labels := append(labelsOf(g, "", holder), &dto.LabelPair{Name: proto.String("window_size_in_ms"), Value: proto.String("300000")},
					&dto.LabelPair{Name: proto.String("xid"), Value: proto.String(c.code)})
				add(g.Hostname, key{g.Hostname, uuid, xidCountField + c.code, holder.pod},
					series{metric: xidCountField, labels: labels, scale: 1, plant: c.plant})
			}
		}
		for _, fd := range fields {
			f.help[fd.name] = telemetry.DescribeMetric(fd.name).Description
			holders := []workload{holder}
			if fd.activity {
				holders = f.holders(role, "", gpuOrder[uuid])
			}
			for _, w := range holders {
				k := key{g.Hostname, uuid, fd.name, w.pod}
				s := series{metric: fd.name, labels: labelsOf(g, "", w), scale: 1, plant: fd.plant}
				if fd.activity {
					s.base, s.scale, s.ratio, s.phase = fd.base, 100, true, phase(k.gpu+k.metric)
				}
				add(g.Hostname, k, s)
			}
		}
	}
	for _, h := range f.hosts {
		slices.SortStableFunc(f.by[h], func(a, b series) int { return strings.Compare(a.metric, b.metric) })
	}
	return f
}

// role is what a GPU shows of real fleets.
type role struct {
	mig    bool      // partitioned into Options.MIG instances
	sliced bool      // shared by Options.TimeSliced pods
	pod    *workload // held by this pod, with another GPU
	idle   bool      // held idle, planted
	faulty bool      // planted XIDs and throttling
	// planted: Xid 163 cancelled by 162, correctable ECC errors climbing, a host sending no
	// profiling field
	cancelled, climbing, noProfiling bool
}

// roles gives GPUs their parts, by UUID: the first host's first GPU is MIG-partitioned, the
// second's is time-sliced, the third's first two are held by one pod, the fourth's first is
// held idle and the fifth's first fails; the sixth host sends no profiling field, the
// seventh's first GPU has its Xid 163 cancelled and the eighth's first counts climbing ECC
// errors — as far as the fleet has hosts and GPUs.
func (f *Fleet) roles(readings []telemetry.Reading) map[string]role {
	out := map[string]role{}
	nth := func(host, i int) string {
		if host >= len(f.hosts) {
			return ""
		}
		gpus := gpusOf(readings, f.hosts[host])
		if i >= len(gpus) {
			return ""
		}
		return gpus[i]
	}
	set := func(uuid string, change func(*role)) {
		if uuid != "" {
			r := out[uuid]
			change(&r)
			out[uuid] = r
		}
	}
	set(nth(0, 0), func(r *role) { r.mig = f.opts.MIG > 0 })
	if f.opts.Pods {
		set(nth(1, 0), func(r *role) { r.sliced = f.opts.TimeSliced > 1 })
		ddp := &workload{container: "trainer", namespace: "research", pod: "ddp-trainer-0"}
		set(nth(2, 0), func(r *role) { r.pod = ddp })
		set(nth(2, 1), func(r *role) { r.pod = ddp })
		set(nth(3, 0), func(r *role) {
			r.idle, r.pod = true, &workload{container: "jupyter", namespace: "team-b", pod: "notebook-idle-0"}
		})
	}
	set(nth(4, 0), func(r *role) { r.faulty = true })
	if len(f.hosts) > 5 {
		for _, uuid := range gpusOf(readings, f.hosts[5]) {
			set(uuid, func(r *role) { r.noProfiling = true })
		}
	}
	set(nth(6, 0), func(r *role) { r.cancelled = true })
	set(nth(7, 0), func(r *role) { r.climbing = true })
	return out
}

// holders is who holds a device: the pods time-slicing it, its pod, or no one (a workload of
// empty names) — the n-th GPU of the fleet, every other one held when Options.Pods is set.
func (f *Fleet) holders(r role, instance string, n int) []workload {
	switch {
	case !f.opts.Pods:
		return []workload{{}}
	case r.sliced && instance == "":
		out := make([]workload, f.opts.TimeSliced)
		for i := range out {
			out[i] = workload{container: "server", namespace: "inference", pod: fmt.Sprintf("shared-infer-%d", i)}
		}
		return out
	case r.pod != nil:
		return []workload{*r.pod}
	case instance != "":
		return []workload{{container: "trainer", namespace: []string{"team-a", "team-b", "research"}[n%3], pod: fmt.Sprintf("train-%d-mig-%s", n, instance)}}
	case n%2 == 0:
		return []workload{{container: "trainer", namespace: []string{"team-a", "team-b", "research"}[n%3], pod: fmt.Sprintf("train-%d", n)}}
	}
	return []workload{{}}
}

// gpusOf lists a host's GPUs, in the readings' order.
func gpusOf(readings []telemetry.Reading, host string) []string {
	var out []string
	for _, r := range readings {
		if r.GPU.Hostname == host && !slices.Contains(out, r.GPU.UUID) {
			out = append(out, r.GPU.UUID)
		}
	}
	return out
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

// labelsOf writes a device's labels in dcgm-exporter's order.
func labelsOf(g telemetry.GPU, instance string, w workload) []*dto.LabelPair {
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
	add("container", w.container)
	add("namespace", w.namespace)
	add("pod", w.pod)
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
		if f.opts.BadLine && host == f.hosts[0] {
			fmt.Fprintf(w, "# TYPE DCGM_FI_DEV_VGPU_LICENSE_STATUS gauge\nDCGM_FI_DEV_VGPU_LICENSE_STATUS{gpu=\"0\",Hostname=%q} ERROR - FAILED TO CONVERT TO STRING\n", host)
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
		if s.metric == xidField { // dcgm-exporter names the error on the series
			code, msg := "0", "No Error"
			if v != 0 {
				code, msg = strconv.Itoa(int(v)), xidMessages[int(v)]
			}
			m.Label = append(slices.Clip(s.labels), &dto.LabelPair{Name: proto.String("err_code"), Value: proto.String(code)},
				&dto.LabelPair{Name: proto.String("err_msg"), Value: proto.String(msg)})
		}
		if mf.GetType() == dto.MetricType_COUNTER {
			m.Counter = &dto.Counter{Value: proto.Float64(v)}
		} else {
			m.Gauge = &dto.Gauge{Value: proto.Float64(v)}
		}
		mf.Metric = append(mf.Metric, m)
	}
	return out
}

// xidMessages are the err_msg of the XIDs planted.
var xidMessages = map[int]string{79: "GPU has fallen off the bus", 162: "Power smoothing HW circuitry capability reengaged",
	163: "Power smoothing HW circuitry capability disengaged"}

// counter reports whether dcgm-exporter exports the field as a counter.
func counter(metric string) bool {
	switch metric {
	case "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
		"DCGM_FI_DEV_POWER_VIOLATION", "DCGM_FI_DEV_THERMAL_VIOLATION", sbeField:
		return true
	}
	return false
}

// at is the series' value at t: counters grow, gauges swing around their base over five
// minutes, with as many decimals as the base (whole numbers staying whole), percentages
// within 0–100 and ratios (DCGM_FI_PROF_*) within 0–1.
func (s series) at(t time.Time) float64 {
	secs := float64(t.UnixMilli()) / 1000
	minute := t.Minute()
	switch s.plant {
	case plantXID, plantThrottle, plantSBE:
		return 0
	case plantXIDCancelled:
		switch {
		case minute >= 5 && minute < 20:
			return 163
		case minute >= 20 && minute < 25:
			return 162
		}
		return 0
	case plantXIDCount13:
		return float64(1 + minute%3)
	case plantXIDCount79:
		switch {
		case minute >= 10 && minute < 15:
			return float64(minute - 9)
		case minute >= 40 && minute < 45:
			return float64(minute - 39)
		}
		return 0
	case plantSBEClimbing:
		return math.Floor(math.Mod(secs, 86400) * sbeClimbing) // volatile: back to 0 at a daily reset
	case plantIdleActivity:
		if minute < 45 {
			return float64(int(secs)%3) / 1000 // no kernels: 0–0.2 % of the time
		}
	case plantXIDHere:
		if minute >= 10 && minute < 15 || minute >= 40 && minute < 45 {
			return 79
		}
		return 0
	case plantThrottleHere:
		if minute >= 20 && minute < 30 {
			return hwThermal
		}
		return 0
	case plantIdle:
		if minute < 45 {
			return float64(int(secs) % 2) // 0–1 %: held, idle
		}
	}
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
