package promapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/prometheus/promql"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Errors in Prometheus' shape — {"status":"error","errorType":…,"error":…} — with its
// statuses, decided here only: a request that cannot be understood is bad_data (400), a
// query that fails while evaluated is execution (422), one cut short is timeout or canceled
// (503), a store that does not answer is unavailable (503), so that Grafana retries, and a
// method other than GET or POST is refused (405).
type errorType string

const (
	errBadData     errorType = "bad_data"
	errExecution   errorType = "execution"
	errTimeout     errorType = "timeout"
	errCanceled    errorType = "canceled"
	errUnavailable errorType = "unavailable"
	errNotFound    errorType = "not_found"
	errMethod      errorType = "method_not_allowed"
	errInternal    errorType = "internal"
)

type apiError struct {
	typ errorType
	err error
}

func (e *apiError) Error() string { return e.err.Error() }

func errorf(typ errorType, format string, args ...any) error {
	return &apiError{typ: typ, err: fmt.Errorf(format, args...)}
}

// execError classifies an error of evaluating a query or reading the store.
func execError(err error) error {
	var timeout promql.ErrQueryTimeout
	var canceled promql.ErrQueryCanceled
	var tooMany promql.ErrTooManySamples
	switch {
	case errors.As(err, &timeout):
		return &apiError{typ: errTimeout, err: err}
	case errors.As(err, &canceled):
		return &apiError{typ: errCanceled, err: err}
	case errors.Is(err, telemetry.ErrUnavailable):
		return &apiError{typ: errUnavailable, err: err}
	case errors.As(err, &tooMany):
		return &apiError{typ: errExecution, err: err}
	case errors.Is(err, telemetry.ErrInvalid):
		return &apiError{typ: errBadData, err: err}
	}
	return &apiError{typ: errExecution, err: err}
}

var statusOf = map[errorType]int{
	errBadData: http.StatusBadRequest, errExecution: http.StatusUnprocessableEntity,
	errTimeout: http.StatusServiceUnavailable, errCanceled: http.StatusServiceUnavailable,
	errUnavailable: http.StatusServiceUnavailable, errNotFound: http.StatusNotFound, errMethod: http.StatusMethodNotAllowed,
	errInternal: http.StatusInternalServerError,
}

func writeError(w http.ResponseWriter, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		e = &apiError{typ: errInternal, err: err}
	}
	writeJSON(w, statusOf[e.typ], failure{Status: "error", ErrorType: e.typ, Error: e.err.Error()})
}
