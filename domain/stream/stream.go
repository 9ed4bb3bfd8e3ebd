// Package stream is the streamer: it reads telemetry from a source, keeps its shard of the
// GPUs, stamps samples, cuts them into batches and publishes the batches, paced, once or in a
// loop to simulate a live cluster.
//
// A replay stamped now keeps the source's own timing. The readings that share a source
// timestamp are one scrape and get one new timestamp, shifted by the same amount as every
// other scrape of the pass: the first scrape is stamped with the time it is read, and each
// later pass starts one source step (the smallest gap between two of its timestamps) after
// the last scrape of the pass before. With a positive Speed each scrape is published when
// its time comes, so the bundled file (four scrapes a second apart) streams a scrape a second.
package stream

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// Config is what a streamer does. BatchSize must be positive.
type Config struct {
	BatchSize int           // samples per batch
	Interval  time.Duration // pause between two batches; 0 publishes as fast as the queue takes them
	Loop      bool          // start over at the end of the source
	Passes    int           // with Loop, stop after this many passes; 0 never stops
	// KeepTimestamps keeps the source's timestamps; otherwise the source's scrapes are
	// stamped anew, as a live exporter's would be (see the package doc).
	KeepTimestamps bool
	// Speed, without KeepTimestamps, paces a replay by the source's timing: 1 publishes each
	// scrape when its new timestamp comes, 2 twice as fast; 0 publishes as fast as the queue
	// takes them. New timestamps keep the source's spacing whatever the speed, so above 1
	// they run ahead of the clock.
	Speed float64
	Shard Shard
	// ProgressEvery is how often a progress line is logged; 0 means every 10 seconds.
	ProgressEvery time.Duration
}

// Shard is this streamer's share of the GPUs: those whose UUID hashes to Index modulo Count.
// Streamers configured 0/N … N-1/N together cover every GPU exactly once.
type Shard struct {
	Index, Count int
}

// Owns reports whether the GPU with this UUID belongs to the shard.
func (s Shard) Owns(uuid string) bool {
	if s.Count <= 1 {
		return true
	}
	h := fnv.New32a()
	h.Write([]byte(uuid))
	return int(h.Sum32()%uint32(s.Count)) == s.Index
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, max(s.Count, 1)) }

// Stats counts what a streamer has done.
type Stats struct {
	Passes    int
	Source    telemetry.ScanStats // rows read, rejected and blank, over every pass
	OtherGPUs int64               // readings left to other shards
	Samples   int64               // samples published
	Batches   int64               // batches published
}

// Service streams one source to one publisher.
type Service struct {
	cfg Config
	src ports.Source
	pub ports.Publisher
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex // guards stats, written by Run's goroutine only
	stats Stats

	batch                 telemetry.Batch
	stamps                restamp
	paced                 bool           // wallStart and stampStart are set
	wallStart, stampStart time.Time      // the first scrape's time on the clock and its timestamp
	gpus                  map[string]int // GPUs already in batch, by key: their index in batch.GPUs
	taken                 int64          // readings of this shard taken into batches
	lastSent              time.Time
	lastLog               time.Time
}

// New returns a streamer. now is the clock used to stamp samples and pace batches; nil means
// time.Now.
func New(cfg Config, src ports.Source, pub ports.Publisher, log *slog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 10 * time.Second
	}
	return &Service{cfg: cfg, src: src, pub: pub, log: log, now: now, gpus: make(map[string]int)}
}

// Stats returns the counts so far; it is safe to call while Run runs (a metrics scrape).
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Run streams until the source is done (without Loop) or ctx ends, and returns nil in both
// cases. Any other error (the source cannot be read, the queue refuses a batch) is returned.
// A batch being published when ctx ends is not published; nothing published is lost.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.BatchSize <= 0 {
		return telemetry.Invalid("batch-size", "must be positive")
	}
	s.lastLog = s.now()
	for {
		before := s.taken
		s.stamps.pass()
		scanned, err := s.src.Scan(ctx, func(r telemetry.Reading) error { return s.add(ctx, r) })
		s.mu.Lock()
		s.stats.Passes++
		s.stats.Source = s.stats.Source.Add(scanned)
		s.mu.Unlock()
		last := !s.cfg.Loop || (s.cfg.Passes > 0 && s.stats.Passes >= s.cfg.Passes)
		// File timestamps repeat from pass to pass, so a batch must not straddle two passes:
		// its ID would differ from that of the same readings in another pass, and they would
		// be stored twice. Samples stamped now are new on every pass: batches fill across.
		if err == nil && (last || s.cfg.KeepTimestamps) {
			err = s.flush(ctx)
		}
		if ctx.Err() != nil {
			s.logProgress(ctx, "streamer stopped")
			return nil
		}
		if err != nil {
			return err
		}
		owned := s.taken - before
		level := slog.LevelDebug // the progress line reports on long runs
		if s.stats.Passes == 1 {
			level = slog.LevelInfo
		}
		s.log.Log(ctx, level, "source pass done", "pass", s.stats.Passes, "rows", scanned.Rows,
			"rejected", scanned.Rejected, "rejected_by", scanned.Reasons(), "blank", scanned.Blank, "taken", owned, "shard", s.cfg.Shard.String())
		if last {
			s.logProgress(ctx, "streamer done")
			return nil
		}
		if owned == 0 { // nothing for this shard: don't spin
			if err := sleep(ctx, max(s.cfg.Interval, time.Second)); err != nil {
				return nil
			}
		}
	}
}

// add takes one reading into the current batch, publishing the batch when it is full.
func (s *Service) add(ctx context.Context, r telemetry.Reading) error {
	if !s.cfg.Shard.Owns(r.GPU.UUID) {
		s.mu.Lock()
		s.stats.OtherGPUs++
		s.mu.Unlock()
		return nil
	}
	if !s.cfg.KeepTimestamps {
		stamp, scrape := s.stamps.of(r.Sample.Time, s.now)
		if scrape && s.cfg.Speed > 0 {
			if err := s.await(ctx, stamp); err != nil {
				return err
			}
		}
		r.Sample.Time = stamp
	}
	s.taken++
	if at, ok := s.gpus[r.Sample.GPU]; ok {
		s.batch.GPUs[at] = s.batch.GPUs[at].WithFamilyLabelsOf(r.GPU)
	} else {
		s.gpus[r.Sample.GPU] = len(s.batch.GPUs)
		s.batch.GPUs = append(s.batch.GPUs, r.GPU)
	}
	s.batch.Samples = append(s.batch.Samples, r.Sample)
	if len(s.batch.Samples) >= s.cfg.BatchSize {
		return s.flush(ctx)
	}
	return nil
}

// flush publishes the current batch, if any, after waiting for its turn.
func (s *Service) flush(ctx context.Context) error {
	if len(s.batch.Samples) == 0 {
		return nil
	}
	if !s.lastSent.IsZero() && s.cfg.Interval > 0 {
		if err := sleep(ctx, s.lastSent.Add(s.cfg.Interval).Sub(s.now())); err != nil {
			return err
		}
	}
	s.batch.ID = BatchID(s.batch)
	if err := s.pub.Publish(ctx, s.batch); err != nil {
		return fmt.Errorf("publish batch: %w", err)
	}
	s.lastSent = s.now()
	s.mu.Lock()
	s.stats.Batches++
	s.stats.Samples += int64(len(s.batch.Samples))
	s.mu.Unlock()
	// The published batch belongs to the queue now: start afresh rather than reuse memory.
	s.batch = telemetry.Batch{Samples: make([]telemetry.Sample, 0, s.cfg.BatchSize)}
	clear(s.gpus)
	if s.lastSent.Sub(s.lastLog) >= s.cfg.ProgressEvery {
		s.logProgress(ctx, "streaming")
	}
	return nil
}

// await waits until the scrape stamped at stamp is due, publishing what came before it first.
func (s *Service) await(ctx context.Context, stamp time.Time) error {
	if !s.paced {
		s.paced, s.wallStart, s.stampStart = true, s.now(), stamp
		return nil
	}
	due := s.wallStart.Add(time.Duration(float64(stamp.Sub(s.stampStart)) / s.cfg.Speed))
	if due.After(s.now()) { // the scrape before it is complete: out it goes, then the wait
		if err := s.flush(ctx); err != nil {
			return err
		}
		return sleep(ctx, due.Sub(s.now()))
	}
	return nil
}

// restamp gives a replay's readings new timestamps that keep the source's spacing (see the
// package doc). A reading without a source timestamp belongs to the scrape before it.
type restamp struct {
	inPass      bool
	anchored    bool          // file and the anchors hold a source timestamp of this pass
	file        time.Time     // the current scrape's source timestamp
	stamp       time.Time     // and its new one
	fileAnchor  time.Time     // the pass's first source timestamp
	stampAnchor time.Time     // and its new one
	last        time.Time     // the latest new timestamp given
	step        time.Duration // the smallest positive gap seen between source timestamps
}

// defaultStep separates the passes of a source with a single timestamp, or none.
const defaultStep = time.Second

// pass starts a new pass over the source.
func (c *restamp) pass() { c.inPass, c.anchored = false, false }

// of returns the new timestamp of a reading with source timestamp t (zero: none) and whether
// the reading starts a new scrape.
func (c *restamp) of(t time.Time, now func() time.Time) (time.Time, bool) {
	scrape := false
	if !c.inPass {
		c.inPass, scrape = true, true
		if c.last.IsZero() {
			c.stamp = now()
		} else {
			c.stamp = c.last.Add(cmp.Or(c.step, defaultStep))
		}
		c.last = c.stamp
	}
	switch {
	case t.IsZero() || (c.anchored && t.Equal(c.file)):
		return c.stamp, scrape
	case !c.anchored:
		c.anchored, c.file, c.fileAnchor, c.stampAnchor = true, t, t, c.stamp
		return c.stamp, scrape
	}
	if gap := t.Sub(c.file); gap > 0 && (c.step == 0 || gap < c.step) {
		c.step = gap
	}
	c.file, c.stamp = t, c.stampAnchor.Add(t.Sub(c.fileAnchor))
	if c.stamp.After(c.last) {
		c.last = c.stamp
	}
	return c.stamp, true
}

func (s *Service) logProgress(ctx context.Context, msg string) {
	now := s.now()
	s.log.InfoContext(ctx, msg, "passes", s.stats.Passes, "rows", s.stats.Source.Rows,
		"rejected", s.stats.Source.Rejected, "rejected_by", s.stats.Source.Reasons(), "blank", s.stats.Source.Blank,
		"samples", s.stats.Samples, "batches", s.stats.Batches, "shard", s.cfg.Shard.String())
	s.lastLog = now
}

// BatchID derives a batch's ID from its content: 128 bits of SHA-256 over its GPUs and
// samples. Distinct batches get distinct IDs, and publishing the same readings again — a
// restarted streamer replaying a file with its own timestamps — yields the same ID, so the
// collector stores them once.
func BatchID(b telemetry.Batch) string {
	h := sha256.New()
	var buf []byte
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	for _, g := range b.GPUs {
		str(g.UUID)
		str(g.Hostname)
		buf = binary.AppendVarint(buf, int64(g.Index))
		str(g.Device)
		str(g.ModelName)
		str(g.DriverVersion)
		// Added later: empty, they leave the IDs of batches without them as they were.
		if g.Instance != "" || g.InstanceProfile != "" || g.PCIBusID != "" || len(g.Labels) > 0 {
			str(g.Instance)
			str(g.InstanceProfile)
			str(g.PCIBusID)
			for _, name := range slices.Sorted(maps.Keys(g.Labels)) {
				str(name)
				str(g.Labels[name])
			}
		}
	}
	// Samples come in runs of one device and workload: a flag says when either changes, so
	// the hash reads their text once a run, not once a sample.
	var last telemetry.Sample
	for i, smp := range b.Samples {
		var flags byte
		if i == 0 || smp.GPU != last.GPU {
			flags |= 1
		}
		if i == 0 || smp.Container != last.Container || smp.Pod != last.Pod || smp.Namespace != last.Namespace {
			flags |= 2
		}
		buf = append(buf, flags)
		if flags&1 != 0 {
			str(smp.GPU)
		}
		if flags&2 != 0 {
			str(smp.Container)
			str(smp.Pod)
			str(smp.Namespace)
		}
		str(smp.Metric)
		buf = binary.AppendVarint(buf, smp.Time.UnixNano())
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(smp.Value))
		last = smp
		if len(buf) > 4096 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
