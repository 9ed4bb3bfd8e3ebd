package asynqqueue

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
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
		if want, ok := decodeGenerated(payload); ok && err == nil {
			assert.Equal(t, valueBits(want), valueBits(b), "as the generated code reads it")
		}
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

// decodeGenerated is decodeBatch by the generated code: the reference the wire decoder is
// held to.
func decodeGenerated(payload []byte) (telemetry.Batch, bool) {
	var m queuepb.Batch
	if proto.Unmarshal(payload, &m) != nil || m.Id == "" || m.Samples == 0 {
		return telemetry.Batch{}, false
	}
	n := int(m.Samples)
	for _, column := range []int{len(m.Gpu), len(m.Metric), len(m.TimeDelta), len(m.Value), len(m.Container), len(m.Pod), len(m.Namespace)} {
		if column != n {
			return telemetry.Batch{}, false
		}
	}
	b := telemetry.Batch{ID: m.Id, Samples: make([]telemetry.Sample, n)}
	for _, g := range m.Gpus {
		b.GPUs = append(b.GPUs, telemetry.GPU{UUID: g.Uuid, Hostname: g.Hostname, Index: int(g.Index), Device: g.Device,
			ModelName: g.ModelName, DriverVersion: g.DriverVersion, Instance: g.Instance, InstanceProfile: g.InstanceProfile,
			PCIBusID: g.PciBusId, Labels: g.Labels, IDFrom: g.IdFrom, HostnameLabel: g.HostnameLabel})
	}
	table := append([]string{""}, m.Strings...)
	var ts int64
	for i := range b.Samples {
		s := &b.Samples[i]
		if gi := int(m.Gpu[i]); gi < len(b.GPUs) {
			s.GPU = b.GPUs[gi].Key()
		} else if gi > len(b.GPUs) {
			return telemetry.Batch{}, false
		}
		for _, e := range []uint32{m.Metric[i], m.Container[i], m.Pod[i], m.Namespace[i]} {
			if int(e) >= len(table) {
				return telemetry.Batch{}, false
			}
		}
		ts += m.TimeDelta[i]
		s.Metric, s.Time, s.Value = table[m.Metric[i]], time.Unix(0, ts).UTC(), m.Value[i]
		s.Container, s.Pod, s.Namespace = table[m.Container[i]], table[m.Pod[i]], table[m.Namespace[i]]
	}
	return b, true
}

func TestWireDecoderAgreesWithGeneratedCode(t *testing.T) {
	good := encode(sampleBatch(200))
	payloads := [][]byte{good}
	for i := 0; i < len(good); i += 7 {
		payloads = append(payloads, good[:i]) // cut short
		flipped := slices.Clone(good)
		flipped[i] ^= 0x5a // a byte changed
		payloads = append(payloads, flipped)
	}
	for k, payload := range payloads {
		want, ok := decodeGenerated(payload)
		got, err := decodeBatch(payload)
		if !ok {
			assert.ErrorIs(t, err, errCorrupt, "payload %d", k)
			continue
		}
		if assert.NoError(t, err, "payload %d", k) {
			assert.Equal(t, valueBits(want), valueBits(got), "payload %d", k) // a byte changed can make a NaN
		}
	}
}

// Another producer may write the columns unpacked, one field a value, which every protobuf
// reader must accept.
func TestUnpackedColumnsAreRead(t *testing.T) {
	b := sampleBatch(20)
	var m queuepb.Batch
	require.NoError(t, proto.Unmarshal(encode(b), &m))
	columns := [][]uint64{}
	for _, c := range [][]uint32{m.Gpu, m.Metric} {
		columns = append(columns, widen(c))
	}
	var raw []byte
	raw = protowire.AppendTag(raw, 1, protowire.BytesType)
	raw = protowire.AppendString(raw, m.Id)
	for _, g := range m.Gpus {
		gb, err := proto.Marshal(g)
		require.NoError(t, err)
		raw = protowire.AppendBytes(protowire.AppendTag(raw, 2, protowire.BytesType), gb)
	}
	for _, s := range m.Strings {
		raw = protowire.AppendString(protowire.AppendTag(raw, 3, protowire.BytesType), s)
	}
	for i := range m.Samples { // sample by sample: the columns' fields interleaved
		for c, col := range [][]uint64{columns[0], columns[1], zigzag(m.TimeDelta), nil, widen(m.Container), widen(m.Pod), widen(m.Namespace)} {
			num := protowire.Number(4 + c)
			if col == nil {
				raw = protowire.AppendFixed64(protowire.AppendTag(raw, num, protowire.Fixed64Type), math.Float64bits(m.Value[i]))
				continue
			}
			raw = protowire.AppendVarint(protowire.AppendTag(raw, num, protowire.VarintType), col[i])
		}
	}
	raw = protowire.AppendVarint(protowire.AppendTag(raw, 15, protowire.VarintType), uint64(m.Samples))
	got, err := decode(TaskType, raw)
	require.NoError(t, err)
	assert.Equal(t, b, got)
}

// valueBits is the batch with each value's bits in place of the value, so that NaNs compare.
func valueBits(b telemetry.Batch) telemetry.Batch {
	b.Samples = slices.Clone(b.Samples)
	for i := range b.Samples {
		b.Samples[i].Value = float64(math.Float64bits(b.Samples[i].Value))
	}
	return b
}

func widen(c []uint32) []uint64 {
	out := make([]uint64, len(c))
	for i, v := range c {
		out[i] = uint64(v)
	}
	return out
}

func zigzag(c []int64) []uint64 {
	out := make([]uint64, len(c))
	for i, v := range c {
		out[i] = protowire.EncodeZigZag(v)
	}
	return out
}
