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
				GPU: telemetry.GPU{UUID: "GPU-b", Hostname: "node-2", Index: -1,
					Labels: map[string]string{"pod": "dcgm-exporter-x", "namespace": "gpu-operator"}},
				Sample: telemetry.Sample{GPU: "GPU-b", Metric: "DCGM_FI_DEV_GPU_UTIL", Container: "c", Pod: "train-1", Namespace: "team-b"},
			},
		},
		{
			name:   "no Hostname: the host of the instance label",
			labels: labels("__name__", "M", "UUID", "GPU-c", "instance", "[::1]:9400", "empty", ""),
			want: telemetry.Reading{
				GPU:    telemetry.GPU{UUID: "GPU-c", Hostname: "::1", Index: -1, Labels: map[string]string{"instance": "[::1]:9400"}},
				Sample: telemetry.Sample{GPU: "GPU-c", Metric: "M"},
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
	_, err := telemetry.SeriesReading(labels("__name__", "up", "instance", "node-1:9100", "job", "node"))
	assert.ErrorIs(t, err, telemetry.ErrNoDevice)
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
}
