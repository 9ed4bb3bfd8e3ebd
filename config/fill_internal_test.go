package config

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Every setting fills one field, or has a rule of its own in fromViper; every field's tag
// is a setting.
func TestEverySettingHasItsField(t *testing.T) {
	ownRule := map[string]bool{"retention": true, "retention-5m": true, "retention-1h": true, "retention-workloads": true, "log-level": true, "shard": true}
	tagged := map[string]string{}
	rt := reflect.TypeFor[Config]()
	for i := range rt.NumField() {
		if key := rt.Field(i).Tag.Get("setting"); key != "" {
			assert.NotContains(t, tagged, key, "two fields for one setting")
			tagged[key] = rt.Field(i).Name
		}
	}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.name] = true
		_, isField := tagged[s.name]
		assert.True(t, isField != ownRule[s.name], "%s: a field or a rule of its own, one of the two", s.name)
	}
	for key, field := range tagged {
		assert.True(t, known[key], "%s is tagged %q, which is no setting", field, key)
	}
}
