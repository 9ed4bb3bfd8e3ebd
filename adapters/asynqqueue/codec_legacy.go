package asynqqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// legacyTaskType is the task of the hand-written encoding this package wrote before the
// protobuf one (TaskType). Collectors still read it, so that batches queued before an
// upgrade are stored after it:
//
//	version byte (1, 2 or 3)
//	string batch ID
//	uvarint GPU count, then per GPU: string UUID, Hostname; varint Index; string Device,
//	  ModelName, DriverVersion, Instance, InstanceProfile, PCIBusID; uvarint label count,
//	  then each label's name and value strings, sorted by name; string IDFrom, HostnameLabel
//	uvarint string-table size, then each string (metric and workload names; entry 0 is "")
//	uvarint sample count, then per sample: uvarint GPU index, uvarint metric entry, varint
//	  nanoseconds since the previous sample (the first: since the Unix epoch), 8 bytes
//	  IEEE-754 value (little endian), uvarint container, pod and namespace entries
//
// where a string is a uvarint length followed by its bytes. Version 1 lacks the GPU fields
// after DriverVersion; version 2 the last two.
const legacyTaskType = "telemetry:batch:v1"

const legacyVersion = 3

// errCorrupt marks a payload that cannot be decoded: retrying it cannot help.
var errCorrupt = errors.New("corrupt payload")

// decoder reads a payload, remembering the first error.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", errCorrupt, what)
	}
}

func (d *decoder) uvarint(what string) uint64 { return readVarint(d, what, binary.Uvarint) }
func (d *decoder) varint(what string) int64   { return readVarint(d, what, binary.Varint) }

func readVarint[T uint64 | int64](d *decoder, what string, read func([]byte) (T, int)) T {
	v, n := read(d.buf)
	if n <= 0 {
		d.fail(what)
		d.buf = nil
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) str(what string) string {
	n := d.uvarint(what)
	if n > uint64(len(d.buf)) {
		d.fail(what)
		d.buf = nil
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

// count reads a length and checks that the rest of the payload could hold that many items of
// at least min bytes each, so a corrupt length cannot make decode allocate gigabytes.
func (d *decoder) count(what string, min int) int {
	n := d.uvarint(what)
	if n > uint64(len(d.buf)/min) {
		d.fail(what + " count")
		d.buf = nil
		return 0
	}
	return int(n)
}

func decodeLegacy(payload []byte) (telemetry.Batch, error) {
	if len(payload) == 0 || payload[0] < 1 || payload[0] > legacyVersion {
		return telemetry.Batch{}, fmt.Errorf("%w: unknown encoding version", errCorrupt)
	}
	version := payload[0]
	d := &decoder{buf: payload[1:]}
	b := telemetry.Batch{ID: d.str("batch ID")}
	b.GPUs = make([]telemetry.GPU, d.count("GPU", 6))
	for i := range b.GPUs {
		g := &b.GPUs[i]
		*g = telemetry.GPU{UUID: d.str("GPU UUID"), Hostname: d.str("hostname"), Index: int(d.varint("GPU index")),
			Device: d.str("device"), ModelName: d.str("model name"), DriverVersion: d.str("driver version")}
		if version == 1 {
			continue
		}
		g.Instance, g.InstanceProfile, g.PCIBusID = d.str("GPU instance"), d.str("GPU instance profile"), d.str("PCI bus ID")
		if n := d.count("label", 2); n > 0 {
			g.Labels = make(map[string]string, n)
			for range n {
				name := d.str("label name")
				g.Labels[name] = d.str("label value")
			}
		}
		if version >= 3 {
			g.IDFrom, g.HostnameLabel = d.str("GPU identity's label"), d.str("hostname label")
		}
	}
	keys := make([]string, len(b.GPUs))
	for i, g := range b.GPUs {
		keys[i] = g.Key()
	}
	table := make([]string, d.count("string table", 1)+1)
	for i := 1; i < len(table); i++ {
		table[i] = d.str("string")
	}
	entry := func(what string) string {
		i := d.uvarint(what)
		if i >= uint64(len(table)) {
			d.fail(what)
			return ""
		}
		return table[i]
	}
	b.Samples = make([]telemetry.Sample, d.count("sample", 14))
	var ts int64
	for i := range b.Samples {
		s := &b.Samples[i]
		gi := d.uvarint("sample GPU")
		if gi < uint64(len(b.GPUs)) {
			s.GPU = keys[gi]
		} else if gi > uint64(len(b.GPUs)) {
			d.fail("sample GPU")
		}
		s.Metric = entry("metric")
		ts += d.varint("time")
		s.Time = time.Unix(0, ts).UTC()
		if len(d.buf) < 8 {
			d.fail("value")
			break
		}
		s.Value = math.Float64frombits(binary.LittleEndian.Uint64(d.buf))
		d.buf = d.buf[8:]
		s.Container, s.Pod, s.Namespace = entry("container"), entry("pod"), entry("namespace")
		if d.err != nil {
			break
		}
	}
	if d.err == nil && len(d.buf) > 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return telemetry.Batch{}, d.err
	}
	return b, nil
}
