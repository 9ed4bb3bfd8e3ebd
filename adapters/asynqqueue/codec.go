package asynqqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// TaskType names a batch task and its payload's schema: a queuepb.Batch
// (queuepb/batch.proto), which other producers may write too. A collector reads this and
// the encoding before it (legacyTaskType), and archives a task of any other type instead
// of guessing at it.
const TaskType = "telemetry:batch:v2"

// encode writes a batch as a queuepb.Batch, with protowire: building the message for the
// generated code to marshal took twice as long on the bundled fleet's batches (its GPUs'
// label maps above all), and TestWireDecoderAgreesWithGeneratedCode holds the generated code
// reading what this writes.
func encode(b telemetry.Batch) []byte {
	var table stringTable
	entry := table.entry
	gpus := positions(b.GPUs)
	// The columns in one pass, each into a buffer of its own; written after the string table
	// they fill (fields may come in any order; the sample count comes last).
	n := len(b.Samples)
	var cols [numColumns][]byte
	for c := range cols {
		cols[c] = make([]byte, 0, n*2)
	}
	cols[columnValue] = make([]byte, 0, n*8)
	var (
		prev   int64
		last   *telemetry.Sample // samples come in runs of one device, metric and workload:
		gi, mi uint64            // only a change is looked up
		wc, wp uint64
		wn     uint64
	)
	for i := range b.Samples {
		s := &b.Samples[i]
		if last == nil || s.GPU != last.GPU {
			var ok bool
			if gi, ok = gpus[s.GPU]; !ok { // an undescribed GPU: the collector rejects it by this position
				gi = uint64(len(b.GPUs))
			}
		}
		if last == nil || s.Metric != last.Metric {
			mi = entry(s.Metric)
		}
		if last == nil || s.Container != last.Container || s.Pod != last.Pod || s.Namespace != last.Namespace {
			wc, wp, wn = entry(s.Container), entry(s.Pod), entry(s.Namespace)
		}
		last = s
		ts := s.Time.UnixNano()
		cols[columnGPU] = protowire.AppendVarint(cols[columnGPU], gi)
		cols[columnMetric] = protowire.AppendVarint(cols[columnMetric], mi)
		cols[columnTimeDelta] = protowire.AppendVarint(cols[columnTimeDelta], protowire.EncodeZigZag(ts-prev))
		cols[columnValue] = protowire.AppendFixed64(cols[columnValue], math.Float64bits(s.Value))
		cols[columnContainer] = protowire.AppendVarint(cols[columnContainer], wc)
		cols[columnPod] = protowire.AppendVarint(cols[columnPod], wp)
		cols[columnNamespace] = protowire.AppendVarint(cols[columnNamespace], wn)
		prev = ts
	}

	size := 64 + len(b.ID) + len(b.GPUs)*160
	for _, s := range table.strings {
		size += len(s) + 4
	}
	for _, col := range cols {
		size += len(col) + 12
	}
	out := make([]byte, 0, size)
	out = appendString(out, fieldID, b.ID)
	var msg []byte
	for _, g := range b.GPUs {
		msg = appendGPU(msg[:0], g)
		out = protowire.AppendBytes(protowire.AppendTag(out, fieldGPUs, protowire.BytesType), msg)
	}
	for _, s := range table.strings {
		out = protowire.AppendString(protowire.AppendTag(out, fieldStrings, protowire.BytesType), s)
	}
	if n == 0 {
		return out
	}
	for c, col := range cols {
		out = protowire.AppendBytes(protowire.AppendTag(out, protowire.Number(fieldFirstColumn+c), protowire.BytesType), col)
	}
	return protowire.AppendVarint(protowire.AppendTag(out, fieldSamples, protowire.VarintType), uint64(n))
}

// stringTable numbers the names a batch's samples repeat, from 1: position 0 is "".
type stringTable struct {
	positions map[string]uint64
	strings   []string // from position 1
}

func (t *stringTable) entry(s string) uint64 {
	if s == "" {
		return 0
	}
	i, ok := t.positions[s]
	if !ok {
		if t.positions == nil {
			t.positions = map[string]uint64{}
		}
		i = uint64(len(t.strings) + 1)
		t.positions[s] = i
		t.strings = append(t.strings, s)
	}
	return i
}

// positions maps each GPU's key to its position in gpus, as samples name their device.
func positions(gpus []telemetry.GPU) map[string]uint64 {
	out := make(map[string]uint64, len(gpus))
	for i, g := range gpus {
		out[g.Key()] = uint64(i)
	}
	return out
}

// appendGPU appends a queuepb.GPU, leaving out empty fields as protobuf does.
func appendGPU(b []byte, g telemetry.GPU) []byte {
	b = appendString(b, 1, g.UUID)
	b = appendString(b, 2, g.Hostname)
	if g.Index != 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, 3, protowire.VarintType), uint64(int64(g.Index)))
	}
	for num, s := range []string{4: g.Device, 5: g.ModelName, 6: g.DriverVersion, 7: g.Instance, 8: g.InstanceProfile, 9: g.PCIBusID} {
		b = appendString(b, protowire.Number(num), s)
	}
	var entry []byte
	for name, value := range g.Labels {
		entry = appendString(appendString(entry[:0], 1, name), 2, value)
		b = protowire.AppendBytes(protowire.AppendTag(b, 10, protowire.BytesType), entry)
	}
	b = appendString(b, 11, g.IDFrom)
	return appendString(b, 12, g.HostnameLabel)
}

// appendString appends a string field unless it is empty, as protobuf leaves it out.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
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

// decodeBatch reads a queuepb.Batch with protowire, the protobuf module's wire-format
// reader, the columns side by side straight into the samples: the generated code decodes
// each column into a slice of its own first and each GPU's labels through reflection (1.1–1.3
// times as long, 5 % fewer samples a second in split mode: docs/performance.md);
// TestWireDecoderAgreesWithGeneratedCode keeps it as the reference. A batch whose columns and
// positions disagree is refused.
func decodeBatch(payload []byte) (telemetry.Batch, error) {
	var (
		b       telemetry.Batch
		table   = []string{""}
		samples = -1
		columns [numColumns][]field // each column's fields, in order: packed runs or single values
	)
	err := eachField(payload, func(num protowire.Number, typ protowire.Type, value []byte) error {
		switch {
		case num == fieldID && typ == protowire.BytesType:
			b.ID = string(value)
		case num == fieldGPUs && typ == protowire.BytesType:
			g, err := decodeGPU(value)
			if err != nil {
				return err
			}
			b.GPUs = append(b.GPUs, g)
		case num == fieldStrings && typ == protowire.BytesType:
			table = append(table, string(value))
		case num >= fieldFirstColumn && num < fieldFirstColumn+numColumns:
			columns[num-fieldFirstColumn] = append(columns[num-fieldFirstColumn], field{typ, value})
		case num == fieldSamples && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(value)
			samples = int(v)
		}
		return nil
	})
	if err != nil {
		return telemetry.Batch{}, corrupt(err)
	}
	switch {
	case b.ID == "":
		return telemetry.Batch{}, fmt.Errorf("%w: no batch ID", errCorrupt)
	case samples <= 0: // streamers publish no empty batch: this is a payload cut short
		return telemetry.Batch{}, fmt.Errorf("%w: no samples", errCorrupt)
	case samples > len(payload)/8: // each sample's value alone takes 8 bytes
		return telemetry.Batch{}, fmt.Errorf("%w: %d samples in %d bytes", errCorrupt, samples, len(payload))
	}
	keys := make([]string, len(b.GPUs))
	for i, g := range b.GPUs {
		keys[i] = g.Key()
	}
	b.Samples = make([]telemetry.Sample, samples)
	var cur [numColumns]column // read side by side, a sample at a time
	for c := range cur {
		cur[c] = column{fields: columns[c], doubles: c == columnValue}
	}
	var v [numColumns]uint64
	var ts int64
	for i := range b.Samples {
		for c := range cur {
			if v[c], err = cur[c].next(); err != nil {
				return telemetry.Batch{}, corrupt(fmt.Errorf("column %d, sample %d: %w", c+fieldFirstColumn, i, err))
			}
		}
		s := &b.Samples[i]
		switch gi := v[columnGPU]; {
		case gi < uint64(len(keys)):
			s.GPU = keys[gi]
		case gi > uint64(len(keys)): // len(keys) is an undescribed GPU's, left "" for the collector to reject
			return telemetry.Batch{}, fmt.Errorf("%w: sample %d names GPU %d of %d", errCorrupt, i, gi, len(keys))
		}
		for _, c := range [...]int{columnMetric, columnContainer, columnPod, columnNamespace} {
			if v[c] >= uint64(len(table)) {
				return telemetry.Batch{}, fmt.Errorf("%w: sample %d names string %d of %d", errCorrupt, i, v[c], len(table))
			}
		}
		ts += protowire.DecodeZigZag(v[columnTimeDelta])
		s.Metric, s.Time, s.Value = table[v[columnMetric]], time.Unix(0, ts).UTC(), math.Float64frombits(v[columnValue])
		s.Container, s.Pod, s.Namespace = table[v[columnContainer]], table[v[columnPod]], table[v[columnNamespace]]
	}
	for c := range cur {
		if !cur[c].done() {
			return telemetry.Batch{}, fmt.Errorf("%w: more than %d samples in column %d", errCorrupt, samples, c+fieldFirstColumn)
		}
	}
	return b, nil
}

// decodeGPU reads a queuepb.GPU.
func decodeGPU(raw []byte) (telemetry.GPU, error) {
	var g telemetry.GPU
	err := eachField(raw, func(num protowire.Number, typ protowire.Type, value []byte) error {
		if num == 3 && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(value)
			g.Index = int(int64(v))
			return nil
		}
		if typ != protowire.BytesType {
			return nil // unknown: skipped, as protobuf does
		}
		if num == 10 {
			var name, label string
			err := eachField(value, func(num protowire.Number, typ protowire.Type, value []byte) error {
				if typ == protowire.BytesType && num == 1 {
					name = string(value)
				} else if typ == protowire.BytesType && num == 2 {
					label = string(value)
				}
				return nil
			})
			if g.Labels == nil {
				g.Labels = map[string]string{}
			}
			g.Labels[name] = label
			return err
		}
		if field := [...]*string{1: &g.UUID, 2: &g.Hostname, 4: &g.Device, 5: &g.ModelName, 6: &g.DriverVersion, 7: &g.Instance,
			8: &g.InstanceProfile, 9: &g.PCIBusID, 11: &g.IDFrom, 12: &g.HostnameLabel}; int(num) < len(field) && field[num] != nil {
			*field[num] = string(value)
		}
		return nil
	})
	return g, err
}

// eachField calls fn with each field of a message: its number, wire type and value (a
// length-delimited one's content, else its encoding).
func eachField(raw []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return protowire.ParseError(n)
		}
		raw = raw[n:]
		var value []byte
		if typ == protowire.BytesType {
			value, n = protowire.ConsumeBytes(raw)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, raw)
			value = raw[:max(n, 0)]
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		raw = raw[n:]
		if err := fn(num, typ, value); err != nil {
			return err
		}
	}
	return nil
}

// The fields of queuepb.Batch, and its columns in field order.
const (
	fieldID          = 1
	fieldGPUs        = 2
	fieldStrings     = 3
	fieldFirstColumn = 4
	fieldSamples     = 15

	columnGPU = iota - 5 // field 4
	columnMetric
	columnTimeDelta
	columnValue
	columnContainer
	columnPod
	columnNamespace
	numColumns
)

// field is one occurrence of a column's field: a packed run of values, or one value.
type field struct {
	typ   protowire.Type
	value []byte
}

// column reads a column's values one at a time: varints or, for doubles, their bits, from
// packed runs and single values alike, as every protobuf reader must read them.
type column struct {
	fields  []field // not begun yet
	raw     []byte  // the rest of the packed run being read
	doubles bool
}

var errShort = errors.New("fewer values than samples")

func (c *column) next() (uint64, error) {
	for len(c.raw) == 0 {
		if len(c.fields) == 0 {
			return 0, errShort
		}
		f := c.fields[0]
		c.fields = c.fields[1:]
		switch {
		case f.typ == protowire.BytesType:
			c.raw = f.value
		case f.typ == protowire.Fixed64Type && c.doubles, f.typ == protowire.VarintType && !c.doubles:
			c.raw = f.value // one value, encoded as in a packed run
		default:
			return 0, fmt.Errorf("wire type %d where the column's values are not", f.typ)
		}
	}
	if c.doubles {
		if len(c.raw) < 8 {
			return 0, errShort
		}
		v := binary.LittleEndian.Uint64(c.raw)
		c.raw = c.raw[8:]
		return v, nil
	}
	v, n := protowire.ConsumeVarint(c.raw)
	if n < 0 {
		return 0, protowire.ParseError(n)
	}
	c.raw = c.raw[n:]
	return v, nil
}

// done reports whether every value was read.
func (c *column) done() bool { return len(c.raw) == 0 && len(c.fields) == 0 }

func corrupt(err error) error { return fmt.Errorf("%w: %v", errCorrupt, err) }
