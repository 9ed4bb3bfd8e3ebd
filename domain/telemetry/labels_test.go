package telemetry_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func labels(kv ...string) []telemetry.Label {
	var ls []telemetry.Label
	for i := 0; i < len(kv); i += 2 {
		ls = append(ls, telemetry.Label{Name: kv[i], Value: kv[i+1]})
	}
	return ls
}

func TestSeriesReading(t *testing.T) {
	tests := []struct {
		name   string
		labels []telemetry.Label
		want   telemetry.Reading
	}{
		{
			name: "dcgm-exporter in Kubernetes, a MIG instance with its pod",
			labels: labels("__name__", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gpu", "0", "UUID", "GPU-a", "pci_bus_id", "00000000:07:00.0",
				"device", "nvidia0", "modelName", "NVIDIA A100-SXM4-80GB", "GPU_I_PROFILE", "1g.10gb", "GPU_I_ID", "9",
				"Hostname", "node-1", "DCGM_FI_DRIVER_VERSION", "550.54.15", "container", "main", "namespace", "team-a",
				"pod", "train-0", "instance", "10.0.0.1:9400", "job", "dcgm"),
			want: telemetry.Reading{
				GPU: telemetry.GPU{UUID: "GPU-a", Instance: "9", InstanceProfile: "1g.10gb", Hostname: "node-1", Index: 0,
					Device: "nvidia0", ModelName: "NVIDIA A100-SXM4-80GB", DriverVersion: "550.54.15", PCIBusID: "00000000:07:00.0",
					Labels: map[string]string{"instance": "10.0.0.1:9400", "job": "dcgm"}},
				Sample: telemetry.Sample{GPU: "GPU-a/9", Metric: "DCGM_FI_PROF_GR_ENGINE_ACTIVE", Container: "main", Pod: "train-0", Namespace: "team-a"},
			},
		},
		{
			name: "a Prometheus renamed the exporter's own pod labels",
			labels: labels("__name__", "DCGM_FI_DEV_GPU_UTIL", "UUID", "GPU-b", "hostname", "node-2", "pod", "dcgm-exporter-x",
				"namespace", "gpu-operator", "exported_pod", "train-1", "exported_namespace", "team-b", "exported_container", "c"),
			want: telemetry.Reading{
				GPU: telemetry.GPU{UUID: "GPU-b", Hostname: "node-2", HostnameLabel: "hostname", Index: -1,
					Labels: map[string]string{"pod": "dcgm-exporter-x", "namespace": "gpu-operator"}},
				Sample: telemetry.Sample{GPU: "GPU-b", Metric: "DCGM_FI_DEV_GPU_UTIL", Container: "c", Pod: "train-1", Namespace: "team-b"},
			},
		},
		{
			name:   "no Hostname: none invented",
			labels: labels("__name__", "M", "UUID", "GPU-c", "instance", "[::1]:9400", "empty", ""),
			want: telemetry.Reading{
				GPU:    telemetry.GPU{UUID: "GPU-c", Index: -1, Labels: map[string]string{"instance": "[::1]:9400"}},
				Sample: telemetry.Sample{GPU: "GPU-c", Metric: "M"},
			},
		},
		{
			name:   "dcgm-exporter 1.x: its metric names, uuid lowercase",
			labels: labels("__name__", "dcgm_gpu_utilization", "gpu", "1", "uuid", "GPU-d"),
			want: telemetry.Reading{
				GPU:    telemetry.GPU{UUID: "GPU-d", IDFrom: telemetry.IDFromLowerUUID, Index: 1},
				Sample: telemetry.Sample{GPU: "GPU-d", Metric: "DCGM_FI_DEV_GPU_UTIL"},
			},
		},
		{
			name: "relabelled without UUID: the host and PCI bus ID",
			labels: labels("__name__", "dcgm_fi_prof_gr_engine_active", "gpu", "2", "pci_bus_id", "00000000:3B:00.0", "Hostname", "n3",
				"GPU_I_ID", "1"),
			want: telemetry.Reading{
				GPU: telemetry.GPU{UUID: "pci:n3:00000000:3B:00.0", IDFrom: telemetry.IDFromPCIBusID, Hostname: "n3", Index: 2,
					PCIBusID: "00000000:3B:00.0", Instance: "1"},
				Sample: telemetry.Sample{GPU: "pci:n3:00000000:3B:00.0/1", Metric: "DCGM_FI_PROF_GR_ENGINE_ACTIVE"},
			},
		},
		{
			name:   "relabelled without UUID nor bus ID: the instance and gpu index",
			labels: labels("__name__", "DCGM_FI_DEV_GPU_TEMP", "gpu", "3", "instance", "10.0.0.9:9400"),
			want: telemetry.Reading{
				GPU:    telemetry.GPU{UUID: "gpu:10.0.0.9:9400:3", IDFrom: telemetry.IDFromIndex, Index: 3, Labels: map[string]string{"instance": "10.0.0.9:9400"}},
				Sample: telemetry.Sample{GPU: "gpu:10.0.0.9:9400:3", Metric: "DCGM_FI_DEV_GPU_TEMP"},
			},
		},
		{
			name:   "XID errors: err_code and err_msg are the family's own",
			labels: labels("__name__", "DCGM_FI_DEV_XID_ERRORS", "UUID", "GPU-e", "err_code", "79", "err_msg", "GPU has fallen off the bus", "job", "j"),
			want: telemetry.Reading{
				GPU: telemetry.GPU{UUID: "GPU-e", Index: -1, Labels: map[string]string{"job": "j",
					"DCGM_FI_DEV_XID_ERRORS:err_code": "79", "DCGM_FI_DEV_XID_ERRORS:err_msg": "GPU has fallen off the bus"}},
				Sample: telemetry.Sample{GPU: "GPU-e", Metric: "DCGM_FI_DEV_XID_ERRORS"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := telemetry.SeriesReading(tt.labels)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSeriesWithoutGPU(t *testing.T) {
	_, err := telemetry.SeriesReading(labels("__name__", "node_load1", "instance", "node-1:9100", "job", "node"))
	assert.ErrorIs(t, err, telemetry.ErrNoDevice)
	// A target's own up, as a Prometheus sends it: its target's device, no GPU.
	r, err := telemetry.SeriesReading(labels("__name__", "up", "instance", "node-1:9400", "job", "dcgm"))
	require.NoError(t, err)
	assert.True(t, r.GPU.IsTarget())
	assert.Equal(t, telemetry.TargetKey("node-1:9400"), r.Sample.GPU)
	assert.ElementsMatch(t, labels("__name__", "up", "instance", "node-1:9400", "job", "dcgm"), telemetry.SeriesLabels(r.GPU, r.Sample))
	_, err = telemetry.SeriesReading(labels("__name__", "up", "job", "dcgm"))
	assert.ErrorIs(t, err, telemetry.ErrNoDevice, "a target without an instance")
	_, err = telemetry.SeriesReading(labels("__name__", "DCGM_FI_DEV_GPU_TEMP", "gpu", "0"))
	assert.ErrorIs(t, err, telemetry.ErrNoDevice, "an index without a host tells no GPU apart")
}

func TestDeviceKey(t *testing.T) {
	assert.Equal(t, "GPU-a", telemetry.DeviceKey("GPU-a", ""))
	uuid, inst := telemetry.SplitDeviceKey(telemetry.DeviceKey("GPU-a", "3"))
	assert.Equal(t, []string{"GPU-a", "3"}, []string{uuid, inst})
}

func TestSeriesLabelsReverseSeriesReading(t *testing.T) {
	in := []telemetry.Label{{"__name__", "DCGM_FI_DEV_GPU_UTIL"}, {"UUID", "GPU-1"}, {"GPU_I_ID", "3"}, {"GPU_I_PROFILE", "1g.10gb"},
		{"gpu", "0"}, {"device", "nvidia0"}, {"modelName", "NVIDIA A100"}, {"Hostname", "h1"}, {"pci_bus_id", "00000000:07:00.0"},
		{"DCGM_FI_DRIVER_VERSION", "535.1"}, {"pod", "p"}, {"namespace", "ns"}, {"instance", "h1:9400"}, {"job", "dcgm"}}
	r, err := telemetry.SeriesReading(in)
	require.NoError(t, err)
	assert.ElementsMatch(t, in, telemetry.SeriesLabels(r.GPU, r.Sample))

	// Labels as sent: a lowercase hostname and uuid stay so, an identity the exporter did not
	// send is no label, and a family's own labels go on its series only.
	for _, in := range [][]telemetry.Label{
		{{"__name__", "DCGM_FI_DEV_GPU_TEMP"}, {"uuid", "GPU-2"}, {"hostname", "h2"}, {"gpu", "1"}},
		{{"__name__", "DCGM_FI_DEV_GPU_TEMP"}, {"pci_bus_id", "00000000:07:00.0"}, {"Hostname", "h3"}, {"gpu", "1"}},
		{{"__name__", "DCGM_FI_DEV_XID_ERRORS"}, {"UUID", "GPU-4"}, {"err_code", "79"}, {"err_msg", "fallen off the bus"}},
	} {
		r, err := telemetry.SeriesReading(in)
		require.NoError(t, err)
		assert.ElementsMatch(t, in, telemetry.SeriesLabels(r.GPU, r.Sample))
	}
	xid, err := telemetry.SeriesReading([]telemetry.Label{{"__name__", "DCGM_FI_DEV_XID_ERRORS"}, {"UUID", "GPU-4"}, {"err_code", "79"}})
	require.NoError(t, err)
	assert.ElementsMatch(t, []telemetry.Label{{"__name__", "DCGM_FI_DEV_GPU_TEMP"}, {"UUID", "GPU-4"}},
		telemetry.SeriesLabels(xid.GPU, telemetry.Sample{Metric: "DCGM_FI_DEV_GPU_TEMP"}), "err_code is the XID family's only")
}

// A batch's device gains the family labels of its other readings, without changing a map
// another reading shares.
func TestWithFamilyLabelsOf(t *testing.T) {
	shared := map[string]string{"job": "j"}
	g := telemetry.GPU{UUID: "GPU-1", Labels: shared}
	xid := telemetry.GPU{UUID: "GPU-1", Labels: map[string]string{"job": "j", "DCGM_FI_DEV_XID_ERRORS:err_code": "79"}}
	merged := g.WithFamilyLabelsOf(xid)
	assert.Equal(t, map[string]string{"job": "j", "DCGM_FI_DEV_XID_ERRORS:err_code": "79"}, merged.Labels)
	assert.Equal(t, map[string]string{"job": "j"}, shared, "the shared map untouched")
	assert.Equal(t, g, g.WithFamilyLabelsOf(g), "the same device: nothing to do")
}

// dcgm-exporter's XID count has a series a code on one device: each is kept apart, its code
// folded into the metric, and unfolded into its labels again.
func TestTheXIDCountIsASeriesACode(t *testing.T) {
	read := func(code string) telemetry.Reading {
		r, err := telemetry.SeriesReading([]telemetry.Label{{Name: "__name__", Value: "DCGM_EXP_XID_ERRORS_COUNT"}, {Name: "UUID", Value: "GPU-1"},
			{Name: "Hostname", Value: "h1"}, {Name: "window_size_in_ms", Value: "300000"}, {Name: "xid", Value: code}})
		require.NoError(t, err)
		return r
	}
	r79, r13 := read("79"), read("13")
	assert.Equal(t, "DCGM_EXP_XID_ERRORS_COUNT:xid=79", r79.Sample.Metric)
	assert.Equal(t, "DCGM_EXP_XID_ERRORS_COUNT:xid=13", r13.Sample.Metric)
	assert.NotContains(t, r79.GPU.Labels, "xid", "not a label of the device")
	assert.Equal(t, r79.GPU.UUID, r13.GPU.UUID, "one device")
	got := map[string]string{}
	for _, l := range telemetry.SeriesLabels(r79.GPU, r79.Sample) {
		got[l.Name] = l.Value
	}
	assert.Equal(t, "DCGM_EXP_XID_ERRORS_COUNT", got["__name__"])
	assert.Equal(t, "79", got["xid"])
	assert.Equal(t, "300000", got["window_size_in_ms"])

	metric, folded, ok := telemetry.UnfoldMetric("DCGM_EXP_XID_ERRORS_COUNT:xid=79")
	assert.True(t, ok)
	assert.Equal(t, "DCGM_EXP_XID_ERRORS_COUNT", metric)
	assert.Equal(t, telemetry.Label{Name: "xid", Value: "79"}, folded)
	for _, other := range []string{"DCGM_FI_DEV_XID_ERRORS", "job:rate:sum", "DCGM_EXP_XID_ERRORS_COUNT:gpu=1"} {
		_, _, ok := telemetry.UnfoldMetric(other)
		assert.False(t, ok, other)
	}
	name, own, ok := telemetry.SplitFamilyLabel("DCGM_EXP_XID_ERRORS_COUNT:xid=79:window_size_in_ms")
	assert.True(t, ok)
	assert.Equal(t, []string{"DCGM_EXP_XID_ERRORS_COUNT:xid=79", "window_size_in_ms"}, []string{name, own})
}
