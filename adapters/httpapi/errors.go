package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/access"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

var (
	errNoRoute  = errors.New("no such route")
	errNoMethod = errors.New("method not allowed")
	errPanic    = errors.New("internal error")
	// errQueueUnavailable marks a write the queue did not take: its sender retries.
	errQueueUnavailable = errors.New("queue unavailable")
	// errRateLimited marks a client past its rate limit.
	errRateLimited = errors.New("rate limited")
)

// writeError is the one place where errors become HTTP statuses. Messages of invalid input
// and unknown things are the user's to read; other errors are logged by the request logger
// and answered without detail.
func writeError(c *gin.Context, err error) {
	status, code, msg := http.StatusInternalServerError, "internal", "internal error"
	switch {
	case errors.Is(err, access.ErrUnauthenticated):
		status, code, msg = http.StatusUnauthorized, "unauthenticated", "authentication required: basic auth or a bearer token"
		c.Header("WWW-Authenticate", `Basic realm="telemetry", charset="UTF-8"`)
	case errors.Is(err, access.ErrForbidden):
		status, code, msg = http.StatusForbidden, "forbidden", err.Error()
	case errors.Is(err, errRateLimited) && c.Request.URL.Path == remoteWritePath:
		status, code, msg = http.StatusServiceUnavailable, "rate_limited", "past the rate limit of this client (rate_limit of the web config), retry later"
		c.Header("Retry-After", "1")
	case errors.Is(err, errRateLimited):
		status, code, msg = http.StatusTooManyRequests, "rate_limited", "past the rate limit of this client (rate_limit of the web config), retry later"
		c.Header("Retry-After", "1")
	case errors.Is(err, telemetry.ErrInvalid):
		status, code, msg = http.StatusBadRequest, "invalid_argument", err.Error()
	case errors.Is(err, errNoRoute):
		status, code, msg = http.StatusNotFound, "not_found", "no such route: "+c.Request.URL.Path
	case errors.Is(err, telemetry.ErrNotFound):
		status, code, msg = http.StatusNotFound, "not_found", err.Error()
	case errors.Is(err, errNoMethod):
		status, code, msg = http.StatusMethodNotAllowed, "method_not_allowed", c.Request.Method+" is not allowed on "+c.Request.URL.Path
	case errors.Is(err, telemetry.ErrUnsupported):
		status, code, msg = http.StatusUnsupportedMediaType, "unsupported", err.Error()
	case errors.Is(err, errQueueUnavailable):
		status, code, msg = http.StatusServiceUnavailable, "unavailable", "the samples were not taken in time (the queue full, or too many requests at once), retry later"
		c.Header("Retry-After", "1")
	case errors.Is(err, telemetry.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		status, code, msg = http.StatusServiceUnavailable, "unavailable", "the database is unavailable, try again later"
	case errors.Is(err, context.Canceled):
		status, code, msg = 499, "canceled", "request canceled" // the client is gone; nobody reads this
	}
	if status >= 500 && !errors.Is(err, errRateLimited) {
		_ = c.Error(err) // for the request log
	}
	c.AbortWithStatusJSON(status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
}
