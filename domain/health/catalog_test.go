package health

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTheShippedCatalogKnowsTheCodesInUse(t *testing.T) {
	c := DefaultCatalog()
	assert.Greater(t, c.Len(), 100)
	for code, want := range map[int][2]string{
		13: {ClassApp, ActionRestartApp}, 31: {ClassApp, ActionRestartApp}, 48: {ClassHardware, ActionResetGPU},
		64: {ClassHardware, ActionIsolate}, 79: {ClassHardware, ActionRebootNode}, 92: {ClassHardware, ActionNone},
		119: {ClassDriver, ActionResetGPU}, 162: {ClassHardware, ActionNone},
	} {
		x, ok := c.Lookup(code)
		require.True(t, ok, "code %d", code)
		assert.Equal(t, want, [2]string{x.Class, x.Action}, "code %d", code)
		assert.NotEmpty(t, x.Mnemonic)
	}
	_, ok := c.Lookup(1)
	assert.False(t, ok, "codes the driver no longer uses are left out")
}

func TestACatalogFileOverridesByCode(t *testing.T) {
	c, err := DefaultCatalog().With([]byte(`[{"code": 13, "description": "our rule", "class": "hardware", "action": "isolate"},
		{"code": 200, "description": "a code newer than the release", "class": "driver", "action": "reset_gpu"}]`))
	require.NoError(t, err)
	x, _ := c.Lookup(13)
	assert.Equal(t, XID{Code: 13, Description: "our rule", Class: ClassHardware, Action: ActionIsolate}, x)
	_, ok := c.Lookup(200)
	assert.True(t, ok)
	x, _ = DefaultCatalog().Lookup(13)
	assert.Equal(t, ClassApp, x.Class, "the shipped catalog is left as it is")

	for file, want := range map[string]string{
		`{"code": 13}`: "not a JSON list",
		`[{"code": 0, "class": "app", "action": "none"}]`:         "entry 1: code must be a positive number",
		`[{"code": 13, "class": "gpu", "action": "none"}]`:        `code 13: class "gpu" is not one of app, driver, hardware`,
		`[{"code": 13, "class": "app", "action": "replace_gpu"}]`: `action "replace_gpu" is not one of none, restart_app, reset_gpu, reboot_node, isolate`,
	} {
		_, err := DefaultCatalog().With([]byte(file))
		assert.ErrorContains(t, err, want, file)
	}
}
