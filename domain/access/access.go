// Package access is who may do what over HTTP: the roles a user or token holds and the
// errors of a request that is not let in.
package access

import (
	"context"
	"errors"
	"fmt"
)

// Role is what a caller may do. Each role includes the ones below it.
type Role uint8

// The roles.
const (
	None  Role = iota // probes only
	Read              // the API, the query API, the targets and the queue UI read-only
	Write             // Read, and sending telemetry (remote_write)
	Admin             // Write, and the queue UI's actions (archive, delete, pause, run)
)

// Anonymous is the role of every request when no users are configured: a process is open
// on its own port as before, but the queue UI's actions need a configured admin.
const Anonymous = Write

var names = [...]string{None: "none", Read: "read", Write: "write", Admin: "admin"}

func (r Role) String() string {
	if int(r) < len(names) {
		return names[r]
	}
	return fmt.Sprintf("role(%d)", r)
}

// ParseRole reads a role by its name.
func ParseRole(s string) (Role, error) {
	for r, name := range names {
		if s == name && Role(r) != None {
			return Role(r), nil
		}
	}
	return None, fmt.Errorf("role %q is not read, write or admin", s)
}

// Identity is who sent a request, as authenticated.
type Identity struct {
	Name string // the user's or token's; "" for anonymous
	Role Role
}

// Credentials are what a request presents.
type Credentials struct {
	User, Password string // HTTP basic auth; User "" when absent
	Token          string // a bearer token; "" when absent
}

// Missing reports whether the request presented nothing.
func (c Credentials) Missing() bool { return c.User == "" && c.Password == "" && c.Token == "" }

var (
	// ErrUnauthenticated marks credentials missing or wrong (never saying which).
	ErrUnauthenticated = errors.New("authentication required")
	// ErrForbidden marks a valid caller whose role does not allow the request.
	ErrForbidden = errors.New("forbidden")
)

type roleKey struct{}

// WithRole returns ctx carrying the caller's role.
func WithRole(ctx context.Context, r Role) context.Context {
	return context.WithValue(ctx, roleKey{}, r)
}

// RoleFrom is the caller's role carried by ctx; None when it carries none.
func RoleFrom(ctx context.Context) Role {
	r, _ := ctx.Value(roleKey{}).(Role)
	return r
}

type clientKey struct{}

// WithClient returns ctx carrying who sends the request, as rate limits and per-sender
// budgets count it: an authenticated user or token, or an anonymous client's address.
func WithClient(ctx context.Context, client string) context.Context {
	return context.WithValue(ctx, clientKey{}, client)
}

// ClientFrom is the client ctx carries; "" when it carries none.
func ClientFrom(ctx context.Context) string {
	c, _ := ctx.Value(clientKey{}).(string)
	return c
}
