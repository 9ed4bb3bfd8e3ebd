// Package deploy holds the deployment files; its tests validate them offline.
package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadCompose(t *testing.T, path string, env map[string]string, profiles ...string) (*types.Project, error) {
	t.Helper()
	abs, err := filepath.Abs(path)
	require.NoError(t, err)
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SetProjectName("telemetry-pipeline", true)
		o.Profiles = profiles
	})
}

func TestComposeFileIsValid(t *testing.T) {
	p, err := loadCompose(t, "../docker-compose.yml", map[string]string{})
	require.NoError(t, err)
	for _, name := range []string{"postgres", "redis", "migrate", "api", "collector", "streamer", "adminer"} {
		require.Contains(t, p.Services, name)
	}
	assert.Equal(t, 2, *p.Services["collector"].Deploy.Replicas)
	assert.Equal(t, "8080", p.Services["api"].Ports[0].Published)
	assert.Equal(t, "8081", p.Services["adminer"].Ports[0].Published)
	assert.Contains(t, strings.Join(p.Services["redis"].Command, " "), "--appendonly yes")
	assert.Equal(t, types.ServiceConditionCompletedSuccessfully, p.Services["collector"].DependsOn["migrate"].Condition)
	for _, name := range []string{"api", "collector", "streamer", "migrate"} {
		svc := p.Services[name]
		assert.Equal(t, "deploy/Dockerfile", svc.Build.Dockerfile, name)
		assert.Contains(t, svc.Environment, "TELEMETRY_REDIS_URL", name)
	}

	scaled, err := loadCompose(t, "../docker-compose.yml", map[string]string{
		"STREAMER_INSTANCES": "3", "COLLECTOR_INSTANCES": "5", "API_GW_INSTANCES": "2", "API_PORT": "8080-8081"})
	require.NoError(t, err)
	assert.Equal(t, 3, *scaled.Services["streamer"].Deploy.Replicas)
	assert.Equal(t, 5, *scaled.Services["collector"].Deploy.Replicas)
	assert.Equal(t, 2, *scaled.Services["api"].Deploy.Replicas)
	assert.NotContains(t, p.Services, "simulator", "live scraping is a profile of its own")
}

// The bundled servers' passwords come from .env (documented in .env.example); Redis
// requires its.
func TestComposePasswordsFromEnv(t *testing.T) {
	example, err := os.ReadFile("../.env.example")
	require.NoError(t, err)
	for _, key := range []string{"POSTGRES_PASSWORD=", "REDIS_PASSWORD="} {
		assert.Contains(t, string(example), "\n"+key, ".env.example documents %s", key)
	}
	p, err := loadCompose(t, "../docker-compose.yml", map[string]string{"POSTGRES_PASSWORD": "pg-secret", "REDIS_PASSWORD": "rd-secret"})
	require.NoError(t, err)
	assert.Equal(t, "pg-secret", *p.Services["postgres"].Environment["POSTGRES_PASSWORD"])
	assert.Contains(t, strings.Join(p.Services["redis"].Command, " "), "--requirepass rd-secret")
	assert.Equal(t, "rd-secret", *p.Services["redis"].Environment["REDISCLI_AUTH"], "the health check authenticates")
	for _, name := range []string{"api", "collector", "streamer", "migrate"} {
		env := p.Services[name].Environment
		assert.Contains(t, *env["TELEMETRY_DATABASE_URL"], "telemetry:pg-secret@postgres", name)
		assert.Contains(t, *env["TELEMETRY_REDIS_URL"], "redis://:rd-secret@redis", name)
	}
}

// The live profile adds the simulator and a streamer scraping each of its 31 exporters.
func TestComposeLiveProfile(t *testing.T) {
	p, err := loadCompose(t, "../docker-compose.yml", map[string]string{}, "live")
	require.NoError(t, err)
	require.Contains(t, p.Services, "simulator")
	require.Contains(t, p.Services, "scraper")
	sim := p.Services["simulator"]
	assert.Equal(t, []string{"simulate", "--listen=0.0.0.0:9400"}, []string(sim.Command))
	assert.Equal(t, ":9400", *sim.Environment["TELEMETRY_HTTP_ADDR"], "the image's health check asks the simulator")
	scraper := p.Services["scraper"]
	assert.Contains(t, scraper.Command, "--mode=streamer")
	targets := strings.Split(*scraper.Environment["TELEMETRY_SCRAPE_TARGETS"], ",")
	require.Len(t, targets, 31, "one target a simulated host")
	for i, tg := range targets {
		assert.Equal(t, fmt.Sprintf("simulator:%d", 9400+i), tg)
	}
	assert.Contains(t, scraper.Environment, "TELEMETRY_REDIS_URL")
	assert.Contains(t, scraper.DependsOn, "simulator")
}

// TestComposeValidationCatchesTypos shows the check above would fail on a misspelt field.
func TestComposeValidationCatchesTypos(t *testing.T) {
	src, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	broken := strings.Replace(string(src), "replicas: ${COLLECTOR_INSTANCES", "replicaz: ${COLLECTOR_INSTANCES", 1)
	require.NotEqual(t, string(src), broken)
	path := filepath.Join(t.TempDir(), "docker-compose.yml")
	require.NoError(t, os.WriteFile(path, []byte(broken), 0o644))
	_, err = loadCompose(t, path, map[string]string{})
	assert.ErrorContains(t, err, "replicaz")
}

func TestDockerfile(t *testing.T) {
	src, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", "HEALTHCHECK", "--health-check", "ENTRYPOINT [\"/usr/local/bin/telemetry\"]"} {
		assert.Contains(t, string(src), want)
	}
}

func TestKindConfig(t *testing.T) {
	src, err := os.ReadFile("kind/kind-config.yaml")
	require.NoError(t, err)
	var cfg kindCluster
	require.NoError(t, decodeStrict(src, &cfg))
	assert.Equal(t, "Cluster", cfg.Kind)
	assert.Equal(t, "kind.x-k8s.io/v1alpha4", cfg.APIVersion)
	assert.Equal(t, "control-plane", cfg.Nodes[0].Role)
}
