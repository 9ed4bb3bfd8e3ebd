package memqueue

import (
	"context"
	"sync"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

var (
	_ ports.Publisher = (*Topic)(nil)
	_ ports.Consumer  = (*Topic)(nil)
)

// message is a batch held by a topic. While delivered, token identifies the current delivery
// and due is its lease expiry; a nacked message stays in flight with token 0 until due.
type message struct {
	id      uint64
	batch   telemetry.Batch
	attempt int
	token   uint64
	due     time.Time
	queued  time.Time // when published
}

// Topic is one named, bounded queue of batches. All methods are safe for concurrent use.
type Topic struct {
	name string
	opts Options

	mu        sync.Mutex // guards the fields below
	ready     []*message // FIFO
	inFlight  map[uint64]*message
	dead      []telemetry.Batch
	deadCount int
	nextID    uint64
	closed    bool
	changed   chan struct{} // closed and replaced whenever the state changes
}

func newTopic(name string, opts Options) *Topic {
	return &Topic{name: name, opts: opts, inFlight: make(map[uint64]*message), changed: make(chan struct{})}
}

// Name is the topic's name.
func (t *Topic) Name() string { return t.name }

// Publish implements ports.Publisher. It returns ErrClosed once the topic is closed.
func (t *Topic) Publish(ctx context.Context, b telemetry.Batch) error {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return ErrClosed
		}
		if len(t.ready)+len(t.inFlight) < t.opts.Capacity {
			t.nextID++
			t.ready = append(t.ready, &message{id: t.nextID, batch: b, queued: time.Now()})
			t.signal()
			t.mu.Unlock()
			return nil
		}
		wait := t.changed
		t.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Receive waits for a batch and delivers it. It returns ErrClosed once the topic is closed
// and every batch in it has been acknowledged or dead-lettered, and ctx.Err() when ctx ends.
func (t *Topic) Receive(ctx context.Context) (*Delivery, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t.mu.Lock()
		now := time.Now()
		next := t.requeueDue(now)
		if len(t.ready) > 0 {
			m := t.ready[0]
			t.ready[0] = nil
			t.ready = t.ready[1:]
			t.nextID++
			m.attempt++
			m.token, m.due = t.nextID, now.Add(t.opts.AckTimeout)
			t.inFlight[m.id] = m
			t.mu.Unlock()
			return &Delivery{Batch: m.batch, Attempt: m.attempt, topic: t, msg: m, token: m.token}, nil
		}
		if t.closed && len(t.inFlight) == 0 {
			t.mu.Unlock()
			return nil, ErrClosed
		}
		wait := t.changed
		t.mu.Unlock()

		var expiry <-chan time.Time
		if !next.IsZero() {
			if timer == nil {
				timer = time.NewTimer(next.Sub(now))
			} else {
				timer.Reset(next.Sub(now))
			}
			expiry = timer.C
		}
		select {
		case <-wait:
		case <-expiry:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// requeueDue moves in-flight messages whose lease or backoff has ended back to the ready
// queue and returns the earliest due time still pending, zero if none. Caller holds t.mu.
func (t *Topic) requeueDue(now time.Time) time.Time {
	var next time.Time
	for id, m := range t.inFlight {
		if !m.due.After(now) {
			delete(t.inFlight, id)
			m.token = 0
			t.ready = append(t.ready, m)
			continue
		}
		if next.IsZero() || m.due.Before(next) {
			next = m.due
		}
	}
	return next
}

// Close refuses further batches; consumers go on until the topic is drained. Idempotent.
func (t *Topic) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		t.signal()
	}
}

// Stats returns a snapshot of the topic's counts.
func (t *Topic) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := Stats{Queued: len(t.ready) + t.waiting(), InFlight: len(t.inFlight) - t.waiting(), DeadLetters: t.deadCount}
	oldest := func(m *message) {
		if st.OldestQueued.IsZero() || m.queued.Before(st.OldestQueued) {
			st.OldestQueued = m.queued
		}
	}
	for _, m := range t.ready {
		st.Samples += len(m.batch.Samples)
		oldest(m)
	}
	for _, m := range t.inFlight {
		st.Samples += len(m.batch.Samples)
		if m.token == 0 { // waiting out a backoff: queued again
			oldest(m)
		}
	}
	return st
}

// waiting counts in-flight messages that were nacked and wait out a backoff. Caller holds t.mu.
func (t *Topic) waiting() int {
	n := 0
	for _, m := range t.inFlight {
		if m.token == 0 {
			n++
		}
	}
	return n
}

// DeadLetters returns the most recent dead-lettered batches, oldest first.
func (t *Topic) DeadLetters() []telemetry.Batch {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]telemetry.Batch(nil), t.dead...)
}

// settle applies f to the delivery's message if the delivery is still current.
func (t *Topic) settle(d *Delivery, f func(*message)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.inFlight[d.msg.id]; ok && m.token == d.token && d.token != 0 {
		f(m)
		t.signal()
	}
}

// remove forgets a message for good. Caller holds t.mu.
func (t *Topic) remove(m *message) { delete(t.inFlight, m.id) }

// signal wakes every waiter. Caller holds t.mu.
func (t *Topic) signal() {
	close(t.changed)
	t.changed = make(chan struct{})
}
