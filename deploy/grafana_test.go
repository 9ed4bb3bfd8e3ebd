package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The shipped dashboards are Grafana dashboards by Grafana's own schema (the Foundation
// SDK's types, generated from it): decoded strictly — every field known, of its type, the
// panels' options by their plugin — and valid, as Grafana would import them.
func TestDashboardsFollowGrafanasSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	files, err := filepath.Glob("helm/telemetry-pipeline/files/dashboards/*.json")
	require.NoError(t, err)
	require.Len(t, files, 2)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var d dashboard.Dashboard //lint:ignore SA1019 the shipped dashboards are Grafana's classic JSON, which dashboardv2 does not read
		require.NoError(t, strict(d.UnmarshalJSONStrict(raw)), f)
		require.NoError(t, d.Validate(), f)
		assert.NotEmpty(t, d.Panels, f)
	}

	var d dashboard.Dashboard //lint:ignore SA1019 as above
	assert.Error(t, strict(d.UnmarshalJSONStrict([]byte(`{"title": "x", "panels": [{"type": "timeseries", "bogus": 1}]}`))),
		"an unknown field is refused")
}

// strict is the SDK's strict decoding's error, nil when it lists none.
func strict(err error) error {
	var errs cog.BuildErrors
	if errors.As(err, &errs) && len(errs) == 0 {
		return nil
	}
	return err
}
