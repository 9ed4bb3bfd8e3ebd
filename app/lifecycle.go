package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// component is one long-running part of a process. run works until its context ends, then
// shuts down gracefully and returns; nil means it stopped cleanly (or finished its work, as a
// streamer that is not looping does).
type component struct {
	name  string
	run   func(ctx context.Context) error
	aux   bool // serves the others (probes): the process ends when every other component has
	final bool // when it finishes, the process shuts down (a one-shot import)
}

// runComponents starts the components in order and waits until ctx ends or one of them
// fails. Then it stops them in reverse order — each one's context is cancelled only after
// the component started after it has returned — so that a streamer stops before the
// collector drains the queue, and the collector before the API. The whole shutdown is bounded
// by timeout. It returns the first failure, or nil.
func runComponents(ctx context.Context, log *slog.Logger, timeout time.Duration, components []component) error {
	type running struct {
		component
		cancel context.CancelFunc
		done   chan struct{}
		err    error
	}
	failed := make(chan string, len(components))
	finished := make(chan bool, len(components)) // true: a final component
	primary := 0
	for _, c := range components {
		if !c.aux {
			primary++
		}
	}
	procs := make([]*running, len(components))
	for i, c := range components {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		p := &running{component: c, cancel: cancel, done: make(chan struct{})}
		procs[i] = p
		go func() {
			defer close(p.done)
			p.err = c.run(cctx)
			switch {
			case p.err != nil && cctx.Err() == nil:
				log.Error("component failed", "component", c.name, "err", p.err)
				failed <- c.name
			case cctx.Err() == nil:
				log.Info("component finished", "component", c.name)
				if !c.aux {
					finished <- c.final
				}
			}
		}()
	}

	for idle := 0; idle < primary; idle++ {
		select {
		case <-ctx.Done():
			log.Info("shutting down", "timeout", timeout)
		case name := <-failed:
			log.Info("shutting down after a failure", "component", name, "timeout", timeout)
		case final := <-finished:
			if !final {
				continue // the others go on; when all are done, so is the process
			}
			log.Info("done: shutting down", "timeout", timeout)
		}
		break
	}

	deadline := time.After(timeout)
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		p.cancel()
		select {
		case <-p.done:
			if p.err != nil && !errors.Is(p.err, context.Canceled) {
				errs = append(errs, fmt.Errorf("%s: %w", p.name, p.err))
			}
		case <-deadline:
			return errors.Join(append(errs, fmt.Errorf("shutdown timed out after %s waiting for %s", timeout, p.name))...)
		}
	}
	if len(errs) == 0 {
		log.Info("stopped")
	}
	return errors.Join(errs...)
}
