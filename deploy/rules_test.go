package deploy

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The shipped alerting rules load in Prometheus (promtool check rules) and fire as their
// unit tests say (promtool test rules): the pipeline's own alerts on series its /metrics
// serves, the GPU alerts on DCGM fields.
func TestPrometheusRulesCheckAndPassTheirTests(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (scripts/ensure-services.sh installs Debian's prometheus)")
		}
		t.Skip("promtool is not installed; make test installs it")
	}
	for _, args := range [][]string{{"check", "rules", "../helm/telemetry-pipeline/files/prometheus-rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %v:\n%s", args, out)
		assert.Contains(t, string(out), "SUCCESS", "promtool %v", args)
	}
}
