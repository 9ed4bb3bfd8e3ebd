package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want error // nil: passed through unmarked
	}{
		{&pgconn.PgError{Code: "22021", Message: "invalid byte sequence for encoding UTF8"}, telemetry.ErrInvalid},
		{&pgconn.PgError{Code: "22003", Message: "numeric value out of range"}, telemetry.ErrInvalid},
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, telemetry.ErrUnavailable},
		{&pgconn.PgError{Code: "08006", Message: "connection failure"}, telemetry.ErrUnavailable},
		{&pgconn.PgError{Code: "40P01", Message: "deadlock detected"}, nil},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, telemetry.ErrUnavailable},
		{fmt.Errorf("list GPUs: %w", io.ErrUnexpectedEOF), telemetry.ErrUnavailable},
		{syscall.ECONNRESET, telemetry.ErrUnavailable},
		{driver.ErrBadConn, telemetry.ErrUnavailable},
		{context.DeadlineExceeded, telemetry.ErrUnavailable},
		{errors.New("something else"), nil},
	}
	for _, tt := range tests {
		got := classify(tt.err)
		assert.ErrorIs(t, got, tt.err, "the cause stays visible")
		for _, kind := range []error{telemetry.ErrInvalid, telemetry.ErrUnavailable} {
			assert.Equal(t, tt.want == kind, errors.Is(got, kind), "%v is %v", tt.err, kind)
		}
	}
	assert.NoError(t, classify(nil))
}
