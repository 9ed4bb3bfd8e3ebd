// Package memqueue is the in-process message queue used when the whole pipeline runs in one
// process. A Broker holds named topics; each topic is bounded (a full topic blocks its
// publishers instead of dropping anything), delivers each batch to one consumer at a time,
// and redelivers every batch that is not acknowledged: nacked, handled with an error, or held
// past its lease. Closing a topic refuses new batches and lets consumers drain the rest.
//
// It keeps nothing on disk: a batch the process holds when it is killed is lost, which is why
// the pipeline drains the queue before it exits. Use the Redis queue to survive crashes.
package memqueue

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// ErrClosed is returned by Publish on a closed topic, and by Receive once a closed topic is
// drained.
var ErrClosed = errors.New("memqueue: topic closed")

// Options configure every topic of a Broker. Zero fields take the defaults given.
type Options struct {
	// Capacity is how many batches a topic holds, queued or delivered but not yet
	// acknowledged, before Publish blocks. Default 64.
	Capacity int

	// AckTimeout is how long a delivery may stay unacknowledged before the batch is
	// delivered again. Default 5 minutes.
	AckTimeout time.Duration

	// MinBackoff and MaxBackoff bound the delay before a batch whose handler failed is
	// delivered again; the delay doubles with each attempt. Defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration

	// Workers is how many handlers Consume runs at once. Default 1.
	Workers int

	// MaxDeadLetters is how many dead-lettered batches a topic keeps for inspection; older
	// ones are forgotten but still counted. Default 100.
	MaxDeadLetters int

	// Logger receives retries and dead letters. Nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Capacity, 64)
	def(&o.Workers, 1)
	def(&o.MaxDeadLetters, 100)
	defDur(&o.AckTimeout, 5*time.Minute)
	defDur(&o.MinBackoff, 100*time.Millisecond)
	defDur(&o.MaxBackoff, 10*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Broker holds named topics, created on first use.
type Broker struct {
	opts   Options
	mu     sync.Mutex
	topics map[string]*Topic
}

// New returns an empty broker.
func New(opts Options) *Broker {
	return &Broker{opts: opts.withDefaults(), topics: make(map[string]*Topic)}
}

// Topic returns the topic called name, creating it if needed.
func (b *Broker) Topic(name string) *Topic {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.topics[name]
	if !ok {
		t = newTopic(name, b.opts)
		b.topics[name] = t
	}
	return t
}

// Close closes every topic.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range b.topics {
		t.Close()
	}
}

// Stats is a snapshot of a topic.
type Stats struct {
	Queued      int // waiting for a consumer, including batches waiting out a retry backoff
	InFlight    int // delivered, not yet acknowledged
	DeadLetters int // set aside for good, in total
	Samples     int // in the batches queued and in flight
	// OldestQueued is when the batch waiting longest (for a consumer or out a retry's
	// backoff) was published; zero when none waits.
	OldestQueued time.Time
}

// Delivery is one delivery of a batch to a consumer. Exactly one of Ack and Nack should be
// called; calls after the lease expired, or after the first, have no effect.
type Delivery struct {
	Batch   telemetry.Batch
	Attempt int // 1 on first delivery

	topic *Topic
	msg   *message
	token uint64
}

// Ack acknowledges the batch: it is done and never delivered again.
func (d *Delivery) Ack() { d.topic.settle(d, func(m *message) { d.topic.remove(m) }) }

// Nack returns the batch to the topic, to be delivered again after delay.
func (d *Delivery) Nack(delay time.Duration) {
	d.topic.settle(d, func(m *message) { m.token, m.due = 0, time.Now().Add(delay) })
}

// DeadLetter sets the batch aside for good: it is never delivered again, but is kept for
// inspection (see Topic.DeadLetters).
func (d *Delivery) DeadLetter() {
	d.topic.settle(d, func(m *message) {
		d.topic.remove(m)
		d.topic.deadCount++
		d.topic.dead = append(d.topic.dead, m.batch)
		if over := len(d.topic.dead) - d.topic.opts.MaxDeadLetters; over > 0 {
			d.topic.dead = append(d.topic.dead[:0:0], d.topic.dead[over:]...)
		}
	})
}
