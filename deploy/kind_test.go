package deploy

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// kindEnv runs scripts/kind-env.sh with the settings given, and returns its output.
func kindEnv(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"../scripts/kind-env.sh"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out) + string(ee.Stderr), err
	}
	return string(out), err
}

type kindCluster struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Name       string `json:"name"`
	Nodes      []struct {
		Role string `json:"role"`
	} `json:"nodes"`
}

func TestKindClustersConfigs(t *testing.T) {
	env := []string{"KIND_EDGE_NODES=3", "KIND_CENTRAL_NODES=2"}
	for cluster, workers := range map[string]int{"edge": 3, "central": 2} {
		out, err := kindEnv(t, env, "config", cluster)
		require.NoError(t, err, out)
		var cfg kindCluster
		require.NoError(t, decodeStrict([]byte(out), &cfg), out)
		assert.Equal(t, "Cluster", cfg.Kind)
		assert.Equal(t, "kind.x-k8s.io/v1alpha4", cfg.APIVersion)
		assert.Equal(t, "telemetry-"+cluster, cfg.Name)
		require.Len(t, cfg.Nodes, 1+workers)
		assert.Equal(t, "control-plane", cfg.Nodes[0].Role)
		for _, n := range cfg.Nodes[1:] {
			assert.Equal(t, "worker", n.Role)
		}
	}
	out, err := kindEnv(t, []string{"KIND_EDGE_NODES=many"}, "config", "edge")
	require.Error(t, err)
	assert.Contains(t, out, "KIND_EDGE_NODES must be a number")
	out, err = kindEnv(t, nil, "config", "moon")
	require.Error(t, err)
	assert.Contains(t, out, "no cluster 'moon'")
}

// Both releases make setup-kind-env installs, rendered as it renders them: the central one
// runs everything but streamers and lets the edge reach its Redis; the edge one runs only
// streamers, publishing to the Redis its Secret names.
func TestKindReleasesRender(t *testing.T) {
	out, err := kindEnv(t, []string{"HELM=" + helm(t), "STREAMER_INSTANCES=5", "COLLECTOR_INSTANCES=3", "API_GW_INSTANCES=4"}, "render")
	require.NoError(t, err, out)
	centralOut, edgeOut, ok := strings.Cut(strings.TrimPrefix(out, "# cluster: central\n"), "# cluster: edge\n")
	require.True(t, ok, "both releases rendered")

	central := decodeAll(t, centralOut)
	checkInvariants(t, central)
	assert.NotContains(t, central.statefulSets, "telemetry-pipeline-streamer", "no streamers centrally")
	require.Contains(t, central.deployments, "telemetry-pipeline-collector")
	assert.EqualValues(t, 3, *central.deployments["telemetry-pipeline-collector"].Spec.Replicas)
	assert.Nil(t, central.deployments["telemetry-pipeline-api"].Spec.Replicas, "the API's autoscaler owns its replicas")
	assert.Contains(t, centralOut, "minReplicas: 4", "from API_GW_INSTANCES")
	assert.Contains(t, central.statefulSets, "telemetry-pipeline-redis")
	assert.Contains(t, central.statefulSets, "telemetry-pipeline-postgresql")
	var redis corev1.Service
	var servers networkingv1.NetworkPolicy
	for _, doc := range strings.Split(centralOut, "\n---") {
		switch {
		case strings.Contains(doc, "kind: Service\n") && strings.Contains(doc, "name: telemetry-pipeline-redis\n"):
			require.NoError(t, yaml.Unmarshal([]byte(doc), &redis))
		case strings.Contains(doc, "kind: NetworkPolicy\n") && strings.Contains(doc, "name: telemetry-pipeline-servers\n"):
			require.NoError(t, yaml.Unmarshal([]byte(doc), &servers))
		}
	}
	assert.Equal(t, corev1.ServiceTypeNodePort, redis.Spec.Type)
	require.Len(t, redis.Spec.Ports, 1)
	assert.EqualValues(t, 30379, redis.Spec.Ports[0].NodePort)
	var cidrs []string
	for _, rule := range servers.Spec.Ingress {
		for _, from := range rule.From {
			if from.IPBlock != nil {
				cidrs = append(cidrs, from.IPBlock.CIDR)
			}
		}
	}
	assert.Equal(t, []string{"172.16.0.0/12"}, cidrs, "the edge's connections, from Docker's networks, reach Redis")

	edge := decodeAll(t, edgeOut)
	checkInvariants(t, edge)
	assert.Empty(t, edge.deployments, "edge runs streamers only")
	require.Len(t, edge.statefulSets, 1)
	streamer := edge.statefulSets["telemetry-pipeline-streamer"]
	require.NotNil(t, streamer)
	assert.EqualValues(t, 5, *streamer.Spec.Replicas)
	assert.Contains(t, streamer.Spec.Template.Spec.Containers[0].Args, "--shard=ordinal/5")
	env := streamer.Spec.Template.Spec.Containers[0].Env
	require.Len(t, env, 1)
	assert.Equal(t, "telemetry-redis", env[0].ValueFrom.SecretKeyRef.Name, "the Secret setup-kind-env writes")
}
