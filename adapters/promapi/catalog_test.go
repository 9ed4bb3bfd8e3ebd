package promapi

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func testCatalog() *catalog {
	gpu := func(uuid, host string, index int) telemetry.GPUInfo {
		return telemetry.GPUInfo{GPU: telemetry.GPU{UUID: uuid, Hostname: host, Index: index, ModelName: "NVIDIA H100 80GB HBM3"}}
	}
	mig := gpu("GPU-c", "h2", 0)
	for _, id := range []string{"1", "2"} {
		in := gpu("GPU-c", "h2", 0)
		in.Instance = id
		mig.Instances = append(mig.Instances, in)
	}
	return newCatalog([]string{"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_GPU_UTIL"},
		[]telemetry.GPUInfo{gpu("GPU-a", "h1", 0), gpu("GPU-b", "h1", 1), mig, gpu("GPU-d", "", 0)})
}

func keys(ds []*catalogDevice) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.key)
	}
	return out
}

// The index of hosts and UUIDs finds what a pass over every device finds.
func TestCatalogCandidatesByIndexAndByScan(t *testing.T) {
	cat := testCatalog()
	eq := func(name, value string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchEqual, name, value) }
	re := func(name, value string) *labels.Matcher {
		return labels.MustNewMatcher(labels.MatchRegexp, name, value)
	}
	temp := eq(labels.MetricName, "DCGM_FI_DEV_GPU_TEMP")
	for _, tt := range []struct {
		name string
		ms   []*labels.Matcher
		want []string
	}{
		{"a host", []*labels.Matcher{temp, eq("Hostname", "h1")}, []string{"GPU-a", "GPU-b"}},
		{"a GPU and its MIG instances", []*labels.Matcher{temp, eq("UUID", "GPU-c")}, []string{"GPU-c", telemetry.DeviceKey("GPU-c", "1"), telemetry.DeviceKey("GPU-c", "2")}},
		{"one MIG instance", []*labels.Matcher{temp, eq("UUID", "GPU-c"), eq("GPU_I_ID", "2")}, []string{telemetry.DeviceKey("GPU-c", "2")}},
		{"no host label", []*labels.Matcher{temp, eq("Hostname", "")}, []string{"GPU-d"}},
		{"host and UUID disagree", []*labels.Matcher{temp, eq("Hostname", "h1"), eq("UUID", "GPU-c")}, nil},
		{"an unknown host", []*labels.Matcher{temp, eq("Hostname", "h9")}, nil},
		{"a regex", []*labels.Matcher{temp, re("Hostname", "h.*")}, []string{"GPU-a", "GPU-b", "GPU-c", telemetry.DeviceKey("GPU-c", "1"), telemetry.DeviceKey("GPU-c", "2")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			metrics, devices := cat.candidates(tt.ms)
			assert.Equal(t, []string{"DCGM_FI_DEV_GPU_TEMP"}, metrics)
			assert.Equal(t, tt.want, keys(devices))
			var scanned []*catalogDevice
			for i := range cat.devices {
				if deviceMayMatch(tt.ms, cat.devices[i].labels) {
					scanned = append(scanned, &cat.devices[i])
				}
			}
			assert.Equal(t, keys(scanned), keys(devices), "as a scan finds")
		})
	}

	metrics, devices := cat.candidates([]*labels.Matcher{eq(labels.MetricName, "DCGM_FI_DEV_POWER_USAGE"), eq("Hostname", "h1")})
	require.Empty(t, metrics, "no metric stored by that name")
	assert.Empty(t, devices)
}
