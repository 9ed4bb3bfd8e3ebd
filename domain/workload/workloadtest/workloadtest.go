// Package workloadtest drives a workload recorder in tests, on a clock of its own.
package workloadtest

import (
	"context"
	"testing"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/workload"
)

// RecordAll makes passes until the recorder has recorded every sample that settled, on a
// clock that starts at now and moves on by a day a pass: samples settle by the clock too,
// and a test has none to wait for. It returns the last pass that recorded something.
func RecordAll(t testing.TB, r *workload.Recorder, now time.Time) workload.Pass {
	t.Helper()
	var last workload.Pass
	for i := 0; ; i++ {
		p, err := r.Record(context.Background(), now)
		if err != nil {
			t.Fatalf("record workloads: %v", err)
		}
		if p.To.After(p.From) {
			last = p
		}
		if i > 0 && !p.More {
			return last
		}
		now = now.Add(24 * time.Hour)
	}
}
