package portstest

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/access"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

// Principals are the users and tokens an authenticator under test knows: names to
// plain-text passwords or tokens, and names to roles (a name without one reads).
type Principals struct {
	Passwords map[string]string
	Tokens    map[string]string
	Roles     map[string]access.Role
}

// TestAuthenticator runs the contract of ports.Authenticator. newAuth returns an
// authenticator knowing exactly p.
func TestAuthenticator(t *testing.T, newAuth func(t *testing.T, p Principals) ports.Authenticator) {
	p := Principals{
		Passwords: map[string]string{"alice": "wonder land", "grafana": "g-secret", "prometheus": "p-secret"},
		Tokens:    map[string]string{"vmagent": "tok-3f9a1c7e"},
		Roles:     map[string]access.Role{"alice": access.Admin, "prometheus": access.Write, "vmagent": access.Write},
	}
	auth := newAuth(t, p)
	ctx := context.Background()
	role := func(c access.Credentials) access.Role {
		t.Helper()
		id, err := auth.Authenticate(ctx, c)
		require.NoError(t, err, "credentials %+v", c)
		return id.Role
	}

	t.Run("RolesOfUsersAndTokens", func(t *testing.T) {
		assert.Equal(t, access.Admin, role(access.Credentials{User: "alice", Password: "wonder land"}))
		assert.Equal(t, access.Read, role(access.Credentials{User: "grafana", Password: "g-secret"}), "a user without a role reads")
		assert.Equal(t, access.Write, role(access.Credentials{User: "prometheus", Password: "p-secret"}))
		assert.Equal(t, access.Write, role(access.Credentials{Token: "tok-3f9a1c7e"}))
	})
	t.Run("NamesOfUsersAndTokens", func(t *testing.T) {
		for c, want := range map[access.Credentials]string{
			{User: "alice", Password: "wonder land"}: "alice",
			{Token: "tok-3f9a1c7e"}:                  "vmagent",
		} {
			id, err := auth.Authenticate(ctx, c)
			require.NoError(t, err)
			assert.Equal(t, want, id.Name, "rate limits and per-sender budgets count by it")
		}
	})
	t.Run("WrongCredentialsAreRefusedAlike", func(t *testing.T) {
		for _, c := range []access.Credentials{
			{},
			{User: "alice"},
			{User: "alice", Password: "wonder"},
			{User: "alice", Password: "wonder land "},
			{User: "mallory", Password: "wonder land"},
			{User: "vmagent", Password: "tok-3f9a1c7e"}, // a token is not a password
			{Token: "tok-3f9a1c7"},
			{Token: "wonder land"},
		} {
			id, err := auth.Authenticate(ctx, c)
			assert.ErrorIs(t, err, access.ErrUnauthenticated, "credentials %+v", c)
			assert.Equal(t, access.Identity{}, id, "credentials %+v", c)
		}
	})
	t.Run("RepeatedAndConcurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				for range 20 {
					c := access.Credentials{User: "grafana", Password: "g-secret"}
					want := access.Read
					if i%2 == 1 {
						c, want = access.Credentials{User: "grafana", Password: "nope"}, access.None
					}
					id, _ := auth.Authenticate(ctx, c)
					assert.Equal(t, want, id.Role)
				}
			})
		}
		wg.Wait()
	})
}
