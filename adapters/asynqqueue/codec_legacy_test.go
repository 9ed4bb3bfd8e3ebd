package asynqqueue

import (
	"context"
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue/asynqtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// encodeLegacy is the encoder of legacyTaskType, which streamers no longer run: kept here to
// make the payloads a queue may still hold after an upgrade.
func encodeLegacy(b telemetry.Batch) []byte {
	var table stringTable
	entry := table.entry
	gpus := positions(b.GPUs)

	// Samples first, into their own buffer, since they fill the string table.
	body := make([]byte, 0, len(b.Samples)*16)
	body = binary.AppendUvarint(body, uint64(len(b.Samples)))
	var prev int64
	for _, s := range b.Samples {
		gi, ok := gpus[s.GPU]
		if !ok { // a sample of an undescribed GPU: the collector rejects it by this index
			gi = uint64(len(b.GPUs))
		}
		ts := s.Time.UnixNano()
		body = binary.AppendUvarint(body, gi)
		body = binary.AppendUvarint(body, entry(s.Metric))
		body = binary.AppendVarint(body, ts-prev)
		body = binary.LittleEndian.AppendUint64(body, math.Float64bits(s.Value))
		body = binary.AppendUvarint(body, entry(s.Container))
		body = binary.AppendUvarint(body, entry(s.Pod))
		body = binary.AppendUvarint(body, entry(s.Namespace))
		prev = ts
	}

	out := make([]byte, 0, len(body)+64+len(b.GPUs)*96)
	out = append(out, legacyVersion)
	out = appendLegacyString(out, b.ID)
	out = binary.AppendUvarint(out, uint64(len(b.GPUs)))
	for _, g := range b.GPUs {
		out = appendLegacyString(out, g.UUID)
		out = appendLegacyString(out, g.Hostname)
		out = binary.AppendVarint(out, int64(g.Index))
		out = appendLegacyString(out, g.Device)
		out = appendLegacyString(out, g.ModelName)
		out = appendLegacyString(out, g.DriverVersion)
		out = appendLegacyString(out, g.Instance)
		out = appendLegacyString(out, g.InstanceProfile)
		out = appendLegacyString(out, g.PCIBusID)
		out = binary.AppendUvarint(out, uint64(len(g.Labels)))
		for _, name := range slices.Sorted(maps.Keys(g.Labels)) {
			out = appendLegacyString(out, name)
			out = appendLegacyString(out, g.Labels[name])
		}
		out = appendLegacyString(out, g.IDFrom)
		out = appendLegacyString(out, g.HostnameLabel)
	}
	out = binary.AppendUvarint(out, uint64(len(table.strings)))
	for _, s := range table.strings {
		out = appendLegacyString(out, s)
	}
	return append(out, body...)
}

func appendLegacyString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Batches queued in the legacy encoding before an upgrade are still stored after it, its
// version 1 too.
func TestLegacyCodecReadsVersion1(t *testing.T) {
	b := sampleBatch(10)
	b.GPUs = b.GPUs[:2]
	for i := range b.Samples {
		b.Samples[i].GPU = b.GPUs[i%2].UUID
	}
	v3 := encodeLegacy(b)
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
	got, err := decode(legacyTaskType, out)
	require.NoError(t, err)
	assert.Equal(t, b, got)
}

func TestLegacyCodecRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 1000} {
		b := sampleBatch(n)
		got, err := decode(legacyTaskType, encodeLegacy(b))
		require.NoError(t, err)
		if n == 0 {
			b.Samples = []telemetry.Sample{}
		}
		assert.Equal(t, b, got)
	}
	good := encodeLegacy(sampleBatch(50))
	for name, payload := range map[string][]byte{
		"empty": nil, "version": append([]byte{9}, good[1:]...), "trailing": append(slices.Clone(good), 0),
		"huge count": {1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		_, err := decode(legacyTaskType, payload)
		assert.ErrorIs(t, err, errCorrupt, name)
	}
	for i := range good { // every prefix refused, never a panic
		_, err := decode(legacyTaskType, good[:i])
		assert.Error(t, err, "prefix %d", i)
	}
}

// A batch queued in the legacy encoding by a streamer of the version before is delivered by
// a collector of this one.
func TestLegacyTaskIsDelivered(t *testing.T) {
	url := asynqtest.RedisURL(t)
	opts := Options{Name: asynqtest.QueueName(t, url), Concurrency: 1, MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond, PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second}
	q, err := Open(url, opts)
	require.NoError(t, err)
	defer q.Close()
	redisOpt, err := asynq.ParseRedisURI(url)
	require.NoError(t, err)
	client := asynq.NewClient(redisOpt)
	defer client.Close()
	want := sampleBatch(10)
	_, err = client.Enqueue(asynq.NewTask(legacyTaskType, encodeLegacy(want)), asynq.Queue(opts.Name))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	got := make(chan telemetry.Batch, 1)
	go func() {
		defer close(done)
		_ = q.Consume(ctx, func(_ context.Context, b telemetry.Batch) error { got <- b; return nil })
	}()
	defer func() { cancel(); <-done }()
	select {
	case b := <-got:
		assert.Equal(t, want, b)
	case <-time.After(10 * time.Second):
		t.Fatal("the legacy batch was not delivered")
	}
}
