package access

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoles(t *testing.T) {
	for _, r := range []Role{Read, Write, Admin} {
		got, err := ParseRole(r.String())
		require.NoError(t, err)
		assert.Equal(t, r, got)
	}
	for _, bad := range []string{"none", "", "Admin", "root"} {
		_, err := ParseRole(bad)
		assert.Error(t, err, bad)
	}
	assert.True(t, Read < Write && Write < Admin, "each role includes the ones below")
	assert.Less(t, Anonymous, Admin, "nobody unnamed gets the queue UI's actions")
	assert.Equal(t, None, RoleFrom(context.Background()))
	assert.Equal(t, Admin, RoleFrom(WithRole(context.Background(), Admin)))
}
