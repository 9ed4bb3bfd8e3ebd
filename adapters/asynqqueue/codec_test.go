package asynqqueue

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func sampleBatch(n int) telemetry.Batch {
	gpus := []telemetry.GPU{
		{UUID: "GPU-5fd4f087-86f3-7a43-b711-4771313afc50", Hostname: "mtv5-dgx1-hgpu-031", Index: 0, Device: "nvidia0",
			ModelName: "NVIDIA H100 80GB HBM3", DriverVersion: "535.129.03"},
		{UUID: "GPU-2", Hostname: "h", Index: -1},
		{UUID: "GPU-2", Instance: "3", InstanceProfile: "1g.10gb", Hostname: "h", Index: 1, PCIBusID: "00000000:07:00.0",
			Labels: map[string]string{"instance": "h:9400", "job": "dcgm"}},
		{UUID: "pci:h:00000000:3B:00.0", IDFrom: telemetry.IDFromPCIBusID, Hostname: "h", HostnameLabel: "hostname", Index: 2},
	}
	b := telemetry.Batch{ID: "c0ffee", GPUs: gpus}
	t0 := time.Date(2025, 7, 18, 20, 42, 34, 123456789, time.UTC)
	metrics := []string{"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_FB_USED"}
	for i := range n {
		s := telemetry.Sample{GPU: gpus[i%4].Key(), Metric: metrics[i%3], Time: t0.Add(time.Duration(i%7-3) * time.Second),
			Value: float64(i) * 1.5}
		if i%5 == 0 {
			s.Container, s.Pod, s.Namespace = "trainer", "job-7", "ml"
		}
		b.Samples = append(b.Samples, s)
	}
	if n > 0 {
		b.Samples[0].Value = math.Inf(-1) // the codec carries values as they are
	}
	return b
}

func TestCodecRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 1000} {
		b := sampleBatch(n)
		got, err := decode(encode(b))
		require.NoError(t, err)
		if n == 0 {
			b.Samples = []telemetry.Sample{}
		}
		assert.Equal(t, b, got)
	}
}

// Batches queued by a streamer of the previous version are still stored after an upgrade.
func TestCodecReadsVersion1(t *testing.T) {
	b := sampleBatch(10)
	b.GPUs = b.GPUs[:2]
	for i := range b.Samples {
		b.Samples[i].GPU = b.GPUs[i%2].UUID
	}
	v3 := encode(b)
	// Version 1 is version 3 without the three strings, the label count and the two strings
	// after each GPU (the GPUs here have no labels).
	v1 := append([]byte{1}, v3[1:]...)
	d := &decoder{buf: v1[1:]}
	d.str("id")
	d.count("GPU", 6)
	var out []byte
	out = append(out, v1[:len(v1)-len(d.buf)]...)
	for range b.GPUs {
		before := d.buf
		d.str("")
		d.str("")
		d.varint("")
		d.str("")
		d.str("")
		d.str("")
		out = append(out, before[:len(before)-len(d.buf)]...)
		d.str("")
		d.str("")
		d.str("")
		d.count("", 2)
		d.str("")
		d.str("")
	}
	out = append(out, d.buf...)
	got, err := decode(out)
	require.NoError(t, err)
	assert.Equal(t, b, got)
}

func TestCodecIsCompact(t *testing.T) {
	b := sampleBatch(1000)
	b.Samples[0].Value = 0 // JSON cannot carry -Inf
	binary := len(encode(b))
	asJSON, err := json.Marshal(b)
	require.NoError(t, err)
	assert.Less(t, binary*3, len(asJSON), "binary %d bytes, JSON %d", binary, len(asJSON))
}

func TestDecodeRefusesCorruptPayloads(t *testing.T) {
	good := encode(sampleBatch(50))
	cases := map[string][]byte{
		"empty":      nil,
		"version":    append([]byte{9}, good[1:]...),
		"truncated":  good[:len(good)-3],
		"trailing":   append(append([]byte(nil), good...), 0),
		"huge count": {1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"text":       []byte("not a batch"),
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := decode(payload)
			assert.ErrorIs(t, err, errCorrupt)
		})
	}
	// Every prefix of a good payload is refused, never a panic.
	for i := range good {
		_, err := decode(good[:i])
		assert.Error(t, err, "prefix %d", i)
	}
}

func TestSampleOfUndescribedGPUDecodesAsUnknown(t *testing.T) {
	b := telemetry.Batch{ID: "x", Samples: []telemetry.Sample{{GPU: "GPU-undescribed", Metric: "m", Time: time.Unix(1, 0).UTC(), Value: 1}}}
	got, err := decode(encode(b))
	require.NoError(t, err)
	assert.Equal(t, "", got.Samples[0].GPU, "the collector rejects it as invalid")
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(sampleBatch(3)))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, payload []byte) {
		b, err := decode(payload)
		if err == nil {
			again, err := decode(encode(b))
			require.NoError(t, err)
			assert.Equal(t, len(b.Samples), len(again.Samples))
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	payload := encode(sampleBatch(1000))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "samples/s")
}
