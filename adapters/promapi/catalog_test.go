package promapi

import (
	"testing"

	"github.com/prometheus/common/model"
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
	temp := eq(model.MetricNameLabel, "DCGM_FI_DEV_GPU_TEMP")
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

	metrics, devices := cat.candidates([]*labels.Matcher{eq(model.MetricNameLabel, "DCGM_FI_DEV_POWER_USAGE"), eq("Hostname", "h1")})
	require.Empty(t, metrics, "no metric stored by that name")
	assert.Empty(t, devices)
}

// A series is stale at its target's first scrape after its last sample; without the
// target's scrapes, at its device's first sample of the metric after its last.
func TestStaleAt(t *testing.T) {
	series := func(pod string, times ...int64) telemetry.Series {
		s := telemetry.Series{GPU: "GPU-a", Metric: "M", Pod: pod}
		for _, ts := range times {
			s.Points = append(s.Points, telemetry.Point{Time: ts})
		}
		return s
	}
	group := []telemetry.Series{series("old", 10, 20), series("new", 30, 40)}
	assert.Equal(t, []int64{30, 0}, staleAt(group, nil), "the old pod's series ends at the device's next sample")
	assert.Equal(t, []int64{25, 45}, staleAt(group, []int64{10, 20, 25, 30, 40, 45}),
		"each ends at its target's next scrape: a failed one (25) too")
	assert.Equal(t, []int64{0}, staleAt([]telemetry.Series{series("", 10, 20)}, nil), "nothing tells it ended")
	assert.Equal(t, []int64{0}, staleAt([]telemetry.Series{series("", 10, 20)}, []int64{10, 20}), "scraped last at its last sample")
}
