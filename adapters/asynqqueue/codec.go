package asynqqueue

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue/queuepb"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// TaskType names a batch task and its payload's schema: a queuepb.Batch
// (queuepb/batch.proto), which other producers may write too. A collector reads this and
// the encoding before it (legacyTaskType), and archives a task of any other type instead
// of guessing at it.
const TaskType = "telemetry:batch:v2"

// encode writes a batch as a queuepb.Batch.
func encode(b telemetry.Batch) []byte {
	strs := map[string]uint32{"": 0}
	m := &queuepb.Batch{Id: b.ID, Gpus: make([]*queuepb.GPU, len(b.GPUs)), Samples: uint32(len(b.Samples))}
	entry := func(s string) uint32 {
		i, ok := strs[s]
		if !ok {
			i = uint32(len(m.Strings) + 1)
			strs[s] = i
			m.Strings = append(m.Strings, s)
		}
		return i
	}
	gpus := make(map[string]uint32, len(b.GPUs))
	for i, g := range b.GPUs {
		gpus[g.Key()] = uint32(i)
		m.Gpus[i] = &queuepb.GPU{Uuid: g.UUID, Hostname: g.Hostname, Index: int64(g.Index), Device: g.Device,
			ModelName: g.ModelName, DriverVersion: g.DriverVersion, Instance: g.Instance, InstanceProfile: g.InstanceProfile,
			PciBusId: g.PCIBusID, Labels: g.Labels, IdFrom: g.IDFrom, HostnameLabel: g.HostnameLabel}
	}
	n := len(b.Samples)
	m.Gpu, m.Metric, m.TimeDelta, m.Value = make([]uint32, n), make([]uint32, n), make([]int64, n), make([]float64, n)
	m.Container, m.Pod, m.Namespace = make([]uint32, n), make([]uint32, n), make([]uint32, n)
	var prev int64
	for i, s := range b.Samples {
		gi, ok := gpus[s.GPU]
		if !ok { // a sample of an undescribed GPU: the collector rejects it by this position
			gi = uint32(len(b.GPUs))
		}
		ts := s.Time.UnixNano()
		m.Gpu[i], m.Metric[i], m.TimeDelta[i], m.Value[i] = gi, entry(s.Metric), ts-prev, s.Value
		m.Container[i], m.Pod[i], m.Namespace[i] = entry(s.Container), entry(s.Pod), entry(s.Namespace)
		prev = ts
	}
	out, err := proto.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("asynqqueue: marshal a batch: %v", err)) // only invalid UTF-8 fails, which batches never hold
	}
	return out
}

// decode reads a task's payload by its type.
func decode(taskType string, payload []byte) (telemetry.Batch, error) {
	switch taskType {
	case TaskType:
		return decodeBatch(payload)
	case legacyTaskType:
		return decodeLegacy(payload)
	}
	return telemetry.Batch{}, fmt.Errorf("%w: task type %q is not %s", errCorrupt, taskType, TaskType)
}

// decodeBatch reads a queuepb.Batch, refusing one whose columns and positions disagree.
func decodeBatch(payload []byte) (telemetry.Batch, error) {
	var m queuepb.Batch
	if err := proto.Unmarshal(payload, &m); err != nil {
		return telemetry.Batch{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if m.Id == "" {
		return telemetry.Batch{}, fmt.Errorf("%w: no batch ID", errCorrupt)
	}
	n := int(m.Samples)
	if n == 0 { // streamers publish no empty batch: this is a payload cut short
		return telemetry.Batch{}, fmt.Errorf("%w: no samples", errCorrupt)
	}
	for name, column := range map[string]int{"gpu": len(m.Gpu), "metric": len(m.Metric), "time_delta": len(m.TimeDelta),
		"value": len(m.Value), "container": len(m.Container), "pod": len(m.Pod), "namespace": len(m.Namespace)} {
		if column != n {
			return telemetry.Batch{}, fmt.Errorf("%w: %d samples, but %d in column %s", errCorrupt, n, column, name)
		}
	}
	b := telemetry.Batch{ID: m.Id, GPUs: make([]telemetry.GPU, len(m.Gpus)), Samples: make([]telemetry.Sample, n)}
	keys := make([]string, len(m.Gpus))
	for i, g := range m.Gpus {
		b.GPUs[i] = telemetry.GPU{UUID: g.Uuid, Hostname: g.Hostname, Index: int(g.Index), Device: g.Device,
			ModelName: g.ModelName, DriverVersion: g.DriverVersion, Instance: g.Instance, InstanceProfile: g.InstanceProfile,
			PCIBusID: g.PciBusId, Labels: g.Labels, IDFrom: g.IdFrom, HostnameLabel: g.HostnameLabel}
		keys[i] = b.GPUs[i].Key()
	}
	table := append([]string{""}, m.Strings...)
	var bad error
	str := func(i uint32, what string) string {
		if int(i) >= len(table) {
			bad = fmt.Errorf("%w: %s %d is past the string table", errCorrupt, what, i)
			return ""
		}
		return table[i]
	}
	var ts int64
	for i := range b.Samples {
		s := &b.Samples[i]
		switch gi := int(m.Gpu[i]); {
		case gi < len(keys):
			s.GPU = keys[gi]
		case gi > len(keys): // len(keys) itself is an undescribed GPU's, left "" for the collector to reject
			return telemetry.Batch{}, fmt.Errorf("%w: sample %d names GPU %d of %d", errCorrupt, i, gi, len(keys))
		}
		ts += m.TimeDelta[i]
		s.Metric, s.Time, s.Value = str(m.Metric[i], "metric"), time.Unix(0, ts).UTC(), m.Value[i]
		s.Container, s.Pod, s.Namespace = str(m.Container[i], "container"), str(m.Pod[i], "pod"), str(m.Namespace[i], "namespace")
		if bad != nil {
			return telemetry.Batch{}, bad
		}
	}
	return b, nil
}
