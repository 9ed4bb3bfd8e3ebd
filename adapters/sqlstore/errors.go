package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// misconfigured reports whether connecting failed for a reason that waiting will not cure:
// the database does not exist, or the server refuses the role or its password. Open fails
// at once on these, with the server's own message, instead of retrying.
func misconfigured(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "3D000", // invalid_catalog_name: no such database
		"28000", // invalid_authorization_specification: no such role, or pg_hba refuses it
		"28P01": // invalid_password
		return true
	}
	return false
}

// noDatabase reports whether err says the database named does not exist.
func noDatabase(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "3D000"
}

// isLockTimeout reports whether err is a statement given up on at lock_timeout.
func isLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03" // lock_not_available
}

// classify marks errors the caller must treat specially: data PostgreSQL refuses for good
// (bad encoding, a NUL byte, a value out of range) matches telemetry.ErrInvalid, so the
// batch is set aside instead of retried forever; a database that cannot be reached matches
// telemetry.ErrUnavailable. Anything else is returned as it is, and is retried.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "22"): // data exception
			return fmt.Errorf("%w: %w", telemetry.ErrInvalid, err)
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "57P"): // connection, shutdown
			return fmt.Errorf("%w: %w", telemetry.ErrUnavailable, err)
		}
		return err
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	if errors.As(err, &netErr) || errors.As(err, &connectErr) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || // the server went away mid-answer
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) || pgconn.SafeToRetry(err) {
		return fmt.Errorf("%w: %w", telemetry.ErrUnavailable, err)
	}
	return err
}
