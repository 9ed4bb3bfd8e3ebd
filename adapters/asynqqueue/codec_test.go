package asynqqueue

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue/queuepb"
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
	for _, n := range []int{1, 1000} {
		b := sampleBatch(n)
		got, err := decode(TaskType, encode(b))
		require.NoError(t, err)
		assert.Equal(t, b, got)
	}
	_, err := decode(TaskType, encode(sampleBatch(0)))
	assert.ErrorIs(t, err, errCorrupt, "streamers publish no empty batch")
}

func TestCodecIsCompact(t *testing.T) {
	b := sampleBatch(1000)
	b.Samples[0].Value = 0 // JSON cannot carry -Inf
	binary := len(encode(b))
	asJSON, err := json.Marshal(b)
	require.NoError(t, err)
	assert.Less(t, binary*3, len(asJSON), "binary %d bytes, JSON %d", binary, len(asJSON))
	t.Logf("1,000 samples: %d bytes (the legacy encoding %d, JSON %d)", binary, len(encodeLegacy(b)), len(asJSON))
}

func TestDecodeRefusesCorruptPayloads(t *testing.T) {
	b := sampleBatch(50)
	good := encode(b)
	edit := func(change func(*queuepb.Batch)) []byte {
		var m queuepb.Batch
		require.NoError(t, proto.Unmarshal(good, &m))
		change(&m)
		out, err := proto.Marshal(&m)
		require.NoError(t, err)
		return out
	}
	cases := map[string][]byte{
		"empty":           nil,
		"text":            []byte("not a batch"),
		"trailing":        append(slices.Clone(good), 0),
		"no ID":           edit(func(m *queuepb.Batch) { m.Id = "" }),
		"a column short":  edit(func(m *queuepb.Batch) { m.Pod = m.Pod[1:] }),
		"a GPU past":      edit(func(m *queuepb.Batch) { m.Gpu[3] = 99 }),
		"a string past":   edit(func(m *queuepb.Batch) { m.Metric[7] = 99 }),
		"more samples":    edit(func(m *queuepb.Batch) { m.Samples++ }),
		"another version": good,
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			taskType := TaskType
			if name == "another version" {
				taskType = "telemetry:batch:v9"
			}
			_, err := decode(taskType, payload)
			assert.ErrorIs(t, err, errCorrupt)
		})
	}
	// Every prefix of a good payload is refused (the sample count comes last), never a panic.
	for i := range good {
		_, err := decode(TaskType, good[:i])
		assert.Error(t, err, "prefix %d", i)
	}
}

func TestSampleOfUndescribedGPUDecodesAsUnknown(t *testing.T) {
	b := telemetry.Batch{ID: "x", Samples: []telemetry.Sample{{GPU: "GPU-undescribed", Metric: "m", Time: time.Unix(1, 0).UTC(), Value: 1}}}
	got, err := decode(TaskType, encode(b))
	require.NoError(t, err)
	assert.Equal(t, "", got.Samples[0].GPU, "the collector rejects it as invalid")
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(sampleBatch(3)))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, payload []byte) {
		b, err := decode(TaskType, payload)
		if err == nil {
			again, err := decode(TaskType, encode(b))
			require.NoError(t, err)
			assert.Equal(t, len(b.Samples), len(again.Samples))
		}
	})
}

// The codecs of a batch of 1,000 samples, the protobuf one against the legacy one:
// go test -run '^$' -bench Codec ./adapters/asynqqueue.
func BenchmarkCodec(b *testing.B) {
	batch := sampleBatch(1000)
	for _, c := range []struct {
		name     string
		taskType string
		encode   func(telemetry.Batch) []byte
	}{{"protobuf", TaskType, encode}, {"legacy", legacyTaskType, encodeLegacy}} {
		b.Run(c.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.encode(batch)
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "samples/s")
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			payload := c.encode(batch)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decode(c.taskType, payload); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
