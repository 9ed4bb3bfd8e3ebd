package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// The shipped alerting rules load in Prometheus (promtool check rules) and fire as their
// unit tests say (promtool test rules): the pipeline's own alerts on series its /metrics
// serves, the GPU alerts on DCGM fields. make run-split's Prometheus config loads them.
func TestPrometheusRulesCheckAndPassTheirTests(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (scripts/ensure-services.sh installs Debian's prometheus)")
		}
		t.Skip("promtool is not installed; make test installs it")
	}
	for _, args := range [][]string{{"check", "rules", "../helm/telemetry-pipeline/files/prometheus-rules.yml"}, {"test", "rules", "rules_test.yml"},
		{"check", "config", "run-split.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %v:\n%s", args, out)
		assert.Contains(t, string(out), "SUCCESS", "promtool %v", args)
	}
}

// make run-split's Prometheus scrapes every process the script starts, at the address the
// script gives it.
func TestRunSplitPrometheusScrapesEveryProcess(t *testing.T) {
	script, err := os.ReadFile("../scripts/run-split.sh")
	require.NoError(t, err)
	var started []string
	for _, m := range regexp.MustCompile(`(?m)^run .*--http-addr=:(\d+)`).FindAllStringSubmatch(string(script), -1) {
		started = append(started, "localhost:"+m[1])
	}
	require.Len(t, started, 5, "the API, two collectors, two streamers")

	raw, err := os.ReadFile("prometheus/run-split.yml")
	require.NoError(t, err)
	var cfg struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct{ Targets []string } `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	var scraped []string
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			scraped = append(scraped, st.Targets...)
		}
	}
	assert.ElementsMatch(t, started, scraped)
}
