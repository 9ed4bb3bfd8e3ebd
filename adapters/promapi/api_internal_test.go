package promapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Requests beyond MaxConcurrency wait their turn, QueueWait at most, then are unavailable;
// one whose client leaves stops waiting.
func TestAdmissionQueuesThenRefuses(t *testing.T) {
	a := New(Options{MaxConcurrency: 2, QueueWait: 100 * time.Millisecond})
	ctx := context.Background()
	first, err := a.admit(ctx)
	require.NoError(t, err)
	second, err := a.admit(ctx)
	require.NoError(t, err)

	began := time.Now()
	_, err = a.admit(ctx)
	var e *apiError
	require.True(t, errors.As(err, &e), "%v", err)
	assert.Equal(t, errUnavailable, e.typ, "503, which Grafana retries")
	assert.GreaterOrEqual(t, time.Since(began), 100*time.Millisecond, "after waiting its turn")
	assert.Contains(t, err.Error(), "2 queries are running")

	gone, cancel := context.WithCancel(ctx)
	cancel()
	_, err = a.admit(gone)
	require.True(t, errors.As(err, &e))
	assert.Equal(t, errCanceled, e.typ, "the client left")

	go func() { time.Sleep(20 * time.Millisecond); first() }()
	third, err := a.admit(ctx)
	require.NoError(t, err, "a slot freed while it waited")
	third()
	second()
}
