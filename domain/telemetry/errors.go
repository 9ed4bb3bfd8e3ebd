package telemetry

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound means the thing asked for (a GPU, usually) does not exist.
	ErrNotFound = errors.New("not found")

	// ErrInvalid means input can never be accepted as it is: retrying it cannot help.
	// Every *ValidationError matches it with errors.Is.
	ErrInvalid = errors.New("invalid")
)

// ValidationError names the field that is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Is makes errors.Is(err, ErrInvalid) true for every validation error.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Invalid returns a *ValidationError for field; reason is formatted like fmt.Sprintf.
func Invalid(field, reason string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(reason, args...)}
}

// ErrUnavailable means a dependency (the database, the queue) cannot be reached right now;
// the same request may succeed later.
var ErrUnavailable = errors.New("unavailable")

// ErrUnsupported means input comes in a format or protocol the pipeline does not read.
var ErrUnsupported = errors.New("unsupported")
