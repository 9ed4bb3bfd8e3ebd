package deploy

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// podMonitor is the part of the Prometheus Operator's PodMonitor the chart uses.
type podMonitor struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		Selector struct {
			MatchLabels      map[string]string `json:"matchLabels"`
			MatchExpressions []struct {
				Key, Operator string
				Values        []string
			} `json:"matchExpressions"`
		} `json:"selector"`
		PodMetricsEndpoints []struct {
			Port, Path, Interval, Scheme string
			TLSConfig                    map[string]any `json:"tlsConfig"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// prometheusRule is the Prometheus Operator's PrometheusRule: a rules file as its spec.
type prometheusRule struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       rulesFile      `json:"spec"`
}

type rulesFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// With monitoring on, the chart renders a PodMonitor on every pipeline pod's /metrics, a
// PrometheusRule holding the shipped rules as they are, the dashboards for Grafana's
// sidecar, and a KEDA trigger on the Prometheus backlog metric when asked.
func TestChartMonitoringObjects(t *testing.T) {
	out := runHelm(t, "template", "tp", chart, "--set", "monitoring.podMonitor.enabled=true,monitoring.prometheusRule.enabled=true,"+
		"monitoring.dashboards.enabled=true,monitoring.podMonitor.labels.release=kps,"+
		"collector.keda.enabled=true,collector.keda.trigger=prometheus,collector.keda.prometheusAddress=http://prometheus:9090")
	m := decodeAll(t, out)
	checkInvariants(t, m)

	require.Len(t, m.podMonitors, 1)
	pm := m.podMonitors[0].Spec
	assert.Equal(t, "/metrics", pm.PodMetricsEndpoints[0].Path)
	assert.Equal(t, "http", pm.PodMetricsEndpoints[0].Port, "the containers' port name")
	assert.Equal(t, []string{"api", "collector", "streamer"}, pm.Selector.MatchExpressions[0].Values)
	assert.Equal(t, "kps", m.podMonitors[0].Metadata["labels"].(map[string]any)["release"])

	require.Len(t, m.rules, 1)
	raw, err := os.ReadFile(chart + "/files/prometheus-rules.yml")
	require.NoError(t, err)
	var shipped rulesFile
	require.NoError(t, yaml.UnmarshalStrict(raw, &shipped))
	assert.Equal(t, shipped, m.rules[0].Spec, "the PrometheusRule holds the rules file")
	assert.Len(t, shipped.Groups, 2)

	var dashboards int
	for _, cm := range m.configMaps {
		if cm.Labels["grafana_dashboard"] != "1" {
			continue
		}
		for name, body := range cm.Data {
			dashboards++
			assert.True(t, json.Valid([]byte(body)), name)
			want, err := os.ReadFile(chart + "/files/dashboards/" + name)
			require.NoError(t, err)
			assert.Equal(t, strings.TrimSpace(string(want)), body, name)
		}
	}
	assert.Equal(t, 2, dashboards, "the fleet and pipeline-health dashboards")

	assert.Contains(t, out, `type: prometheus`)
	assert.Contains(t, out, `query: "max(telemetry_redis_queue_batches{namespace=\"default\"})"`)
	assert.Zero(t, m.kinds["TriggerAuthentication"], "the Prometheus trigger needs no Redis credentials")

	for _, bad := range []string{"collector.keda.enabled=true,collector.keda.trigger=prometheus", "collector.keda.trigger=nope", "collector.replica=3"} {
		_, err := helmOutput(t, "template", "tp", chart, "--set", bad)
		assert.Error(t, err, bad)
	}
}
