// Package remotewrite receives Prometheus remote_write 1.0 requests (a snappy-compressed
// protobuf WriteRequest, read with the protobuf module's wire-format reader) and hands
// their samples, as readings, to the queue. A request is answered only after the queue
// accepted all of it, so that a sender retries whatever was not: Prometheus resends a
// request whole, and the batches it makes have the same IDs again, so nothing is stored
// twice.
//
// Prometheus' staleness markers (the NaN it writes when a series disappears) are not
// samples and are dropped, as are series that name no GPU (up, node_exporter's), counted.
package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/golang/snappy"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/access"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Options configure a Receiver. Publish is required.
type Options struct {
	// Publish hands a request's readings to the queue and returns nil once it accepted them.
	// It must not keep the slice: the Receiver reuses it for a later request.
	Publish func(context.Context, []telemetry.Reading) error

	// Timeout bounds how long a request waits for the queue (backpressure, an unreachable
	// Redis) before it is answered 503 and retried by its sender. 0 means 10s.
	Timeout time.Duration

	// MaxBytes bounds a request body, compressed and decompressed. 0 means 32 MiB.
	MaxBytes int

	// MaxConcurrent bounds the requests decoded at once, as VictoriaMetrics'
	// -maxConcurrentInserts: each holds its body and readings in memory, so that many at
	// once would take gigabytes. The others wait within Timeout, then are answered 503, which
	// Prometheus retries (a 429 it drops unless told otherwise). 0 means two per core.
	MaxConcurrent int

	// Chunk is how many readings a request hands Publish at a time (the last call fewer); 0
	// means 10,000. A request holds its body and one chunk of readings in memory.
	Chunk int

	// MaxNewDevices bounds the devices a sender (access.ClientFrom) brings that the Receiver
	// has not seen, a minute; a request past it is answered 503 from the first chunk that
	// would pass it (Prometheus retries: the devices come in over the next minutes, nothing
	// is lost). 0 means no limit.
	MaxNewDevices int

	// Logger receives the first request refused for each reason, then a line a minute at
	// most counting those refused since. Nil discards.
	Logger *slog.Logger
}

// Receiver decodes remote_write requests. It is safe for concurrent use.
type Receiver struct {
	opts Options

	dec   *decoder
	bufs  sync.Pool     // of *buffers
	slots chan struct{} // a request being received holds one
	fresh *newDevices

	mu       sync.Mutex
	stats    Stats
	refusal  map[string]*refusals // by reason, for the log
	started  time.Time
	lastKept time.Time // when a request last brought a sample that is kept
}

// refusals is what the log said last about one reason for refusing requests.
type refusals struct {
	logged time.Time
	since  int // refused since, not logged
}

// logEvery is how often a reason for refusing requests is logged at most.
const logEvery = time.Minute

// Stats counts what a Receiver did.
type Stats struct {
	Requests    int64 // requests whose samples the queue accepted
	Samples     int64 // samples handed to the queue
	Stale       int64 // staleness markers dropped
	NoDevice    int64 // samples of series that name no GPU, dropped
	Rejected    int64 // samples that could not be stored (not a finite number, no metric name)
	Malformed   int64 // requests refused as undecodable
	Unavailable int64 // requests refused because the queue did not accept them in time
	Limited     int64 // requests refused because their sender brought too many new devices
}

// New returns a Receiver.
func New(opts Options) *Receiver {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 32 << 20
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.Chunk <= 0 {
		opts.Chunk = 10_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Receiver{opts: opts, started: time.Now(), slots: make(chan struct{}, opts.MaxConcurrent),
		dec: newDecoder(), fresh: newNewDevices(opts.MaxNewDevices)}
}

// Stats returns the counts so far.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Write decodes one request and publishes its samples. Its error matches
// telemetry.ErrInvalid for a body that cannot be decoded (the sender must not retry),
// telemetry.ErrUnsupported for a protocol other than remote_write 1.0, and
// telemetry.ErrUnavailable when the queue did not accept the samples in time (the sender
// retries).
func (r *Receiver) Write(ctx context.Context, req *http.Request) error {
	// One deadline for the turn and the queue: the sender's own timeout (30 s in
	// Prometheus) should not pass first.
	deadline, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-deadline.Done():
		r.add(Stats{Unavailable: 1})
		r.logRefusal(ctx, "remote_write request not received (503): too many at once (--remote-write-max-concurrency); the sender retries it",
			"receiving", cap(r.slots))
		return fmt.Errorf("%w: %d requests are being received at once, the most allowed", telemetry.ErrUnavailable, cap(r.slots))
	}
	buf, _ := r.bufs.Get().(*buffers)
	if buf == nil {
		buf = new(buffers)
	}
	defer r.bufs.Put(buf)
	var counts Stats
	var published, gpus int64 // gpus: a target's own up and the like keep no GPU's telemetry
	sender := access.ClientFrom(ctx)
	err := r.decode(req, buf, &counts, func(readings []telemetry.Reading) error {
		if err := r.fresh.admit(sender, readings, time.Now()); err != nil {
			return err
		}
		if err := r.opts.Publish(deadline, readings); err != nil {
			return fmt.Errorf("%w: the queue did not accept the samples: %w", telemetry.ErrUnavailable, err)
		}
		published += int64(len(readings))
		for i := range readings {
			if !readings[i].GPU.IsTarget() {
				gpus++
			}
		}
		return nil
	})
	counts.Samples = published
	if buf.scratch.refusal != nil {
		r.logRefusal(ctx, "remote_write series refused: its samples are dropped, the rest of the request kept",
			"sender", sender, "err", buf.scratch.refusal)
	}
	var limited *limitError
	switch {
	case errors.As(err, &limited):
		counts.Limited = 1
		r.add(counts)
		r.logRefusal(ctx, "remote_write request not received (503): its sender brings too many new devices (--remote-write-max-new-devices); the sender retries it",
			"sender", sender, "err", err)
		return fmt.Errorf("%w: %w", telemetry.ErrUnavailable, err)
	case errors.Is(err, telemetry.ErrUnavailable):
		counts.Unavailable = 1
		r.add(counts)
		r.logRefusal(ctx, "remote_write request not queued (503): the sender retries it", "err", err)
		return err
	case err != nil:
		counts.Malformed = 1
		r.add(counts)
		msg := "remote_write request refused as malformed (400): the sender does not retry it"
		if errors.Is(err, telemetry.ErrUnsupported) {
			msg = "remote_write request refused as another protocol (415): the sender does not retry it"
		}
		r.logRefusal(ctx, msg, "remote", req.RemoteAddr, "err", err)
		return err
	}
	r.warnIfAllDropped(ctx, gpus, counts)
	counts.Requests = 1
	r.add(counts)
	return nil
}

// warnIfAllDropped warns, once a logEvery at most, while senders' requests bring samples
// and no GPU's has been kept for logEvery: a sender whose series all name no GPU (relabelled
// without UUID, say) must not look healthy. A request of only other series is usual
// (Prometheus shards its series across requests), so one alone says nothing.
func (r *Receiver) warnIfAllDropped(ctx context.Context, kept int64, counts Stats) {
	now := time.Now()
	r.mu.Lock()
	if kept > 0 {
		r.lastKept = now
	}
	since := r.started
	if r.lastKept.After(since) {
		since = r.lastKept
	}
	quiet := now.Sub(since) >= logEvery
	r.mu.Unlock()
	if kept == 0 && quiet && counts.NoDevice+counts.Rejected > 0 {
		r.logRefusal(ctx, "remote_write: no sample kept for a minute: every series received names no GPU (no UUID, uuid, pci_bus_id or gpu label) or cannot be stored",
			"no_device", counts.NoDevice, "invalid", counts.Rejected)
	}
}

// logRefusal logs msg the first time, then once a logEvery at most with the number of
// requests refused for it meanwhile: a sender that keeps failing does not flood the log.
func (r *Receiver) logRefusal(ctx context.Context, msg string, attrs ...any) {
	r.mu.Lock()
	if r.refusal == nil {
		r.refusal = map[string]*refusals{}
	}
	st := r.refusal[msg]
	if st == nil {
		st = &refusals{}
		r.refusal[msg] = st
	}
	now := time.Now()
	if !st.logged.IsZero() && now.Sub(st.logged) < logEvery {
		st.since++
		r.mu.Unlock()
		return
	}
	if st.since > 0 {
		attrs = append(attrs, "refused_since_last_logged", st.since)
	}
	st.logged, st.since = now, 0
	r.mu.Unlock()
	r.opts.Logger.WarnContext(ctx, msg, attrs...)
}

func (r *Receiver) add(s Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Requests += s.Requests
	r.stats.Samples += s.Samples
	r.stats.Stale += s.Stale
	r.stats.NoDevice += s.NoDevice
	r.stats.Rejected += s.Rejected
	r.stats.Malformed += s.Malformed
	r.stats.Unavailable += s.Unavailable
	r.stats.Limited += s.Limited
}

// buffers are one request's, kept for the next: allocating and zeroing a megabyte of
// readings anew each time costs more than decoding them.
type buffers struct {
	body    bytes.Buffer
	raw     []byte
	scratch scratch
}

// decode reads the request in buf, handing emit its readings a chunk at a time. Its error
// matches telemetry.ErrInvalid or ErrUnsupported for a request that is not remote_write
// 1.0, or is emit's.
func (r *Receiver) decode(req *http.Request, buf *buffers, counts *Stats, emit func([]telemetry.Reading) error) error {
	if err := checkHeaders(req.Header); err != nil {
		return err
	}
	buf.body.Reset()
	if _, err := buf.body.ReadFrom(io.LimitReader(req.Body, int64(r.opts.MaxBytes)+1)); err != nil {
		return telemetry.Invalid("body", "cannot be read: %v", err)
	}
	body := buf.body.Bytes()
	if len(body) > r.opts.MaxBytes {
		return telemetry.Invalid("body", "larger than %d bytes", r.opts.MaxBytes)
	}
	if n, err := snappy.DecodedLen(body); err != nil {
		return telemetry.Invalid("body", "is not snappy-compressed: %v", err)
	} else if n > r.opts.MaxBytes {
		return telemetry.Invalid("body", "decompresses to %d bytes, more than %d", n, r.opts.MaxBytes)
	}
	raw, err := snappy.Decode(buf.raw[:cap(buf.raw)], body)
	if err != nil {
		return telemetry.Invalid("body", "is not snappy-compressed: %v", err)
	}
	buf.raw = raw
	err = r.dec.decode(raw, r.opts.Chunk, counts, &buf.scratch, emit)
	if m := (*malformedError)(nil); errors.As(err, &m) {
		return telemetry.Invalid("body", "is not a remote_write WriteRequest: %v", m.err)
	}
	return err
}

// checkHeaders refuses what is not remote_write 1.0: another content type or encoding, or
// the 2.0 protocol (whose senders fall back to 1.0 on 415).
func checkHeaders(h http.Header) error {
	if ct := h.Get("Content-Type"); ct != "" {
		media, params, err := mime.ParseMediaType(ct)
		if err != nil || media != "application/x-protobuf" {
			return fmt.Errorf("%w: Content-Type %q: want application/x-protobuf (remote_write 1.0)", telemetry.ErrUnsupported, ct)
		}
		if proto := params["proto"]; proto != "" && proto != "prometheus.WriteRequest" {
			return fmt.Errorf("%w: %s: only remote_write 1.0 (prometheus.WriteRequest) is received", telemetry.ErrUnsupported, proto)
		}
	}
	if enc := h.Get("Content-Encoding"); enc != "" && enc != "snappy" {
		return fmt.Errorf("%w: Content-Encoding %q: want snappy", telemetry.ErrUnsupported, enc)
	}
	return nil
}
