package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// helmVersion is the Helm the chart is checked with, built from the Go module proxy.
const helmVersion = "v3.19.0"

const chart = "helm/telemetry-pipeline"

var valuesFiles = []string{"values.yaml", "values-same-cluster.yaml", "values-edge-cluster.yaml", "values-central-cluster.yaml", "values-live.yaml"}

var (
	helmOnce sync.Once
	helmBin  string
	helmErr  error
)

// helm returns a Helm binary: $HELM, or one built once into the user's cache directory.
func helm(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		if helmBin = os.Getenv("HELM"); helmBin != "" {
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "telemetry-pipeline", "helm-"+helmVersion)
		helmBin = filepath.Join(dir, "helm")
		if _, err := os.Stat(helmBin); err == nil {
			return
		}
		if os.Getenv("CI") != "true" {
			helmErr = errSkip
			return
		}
		cmd := exec.Command("go", "install", "helm.sh/helm/v3/cmd/helm@"+helmVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
		cmd.Dir = os.TempDir() // outside this module
		if out, err := cmd.CombinedOutput(); err != nil {
			helmErr = fmt.Errorf("go install helm: %v\n%s", err, out)
		}
	})
	if helmErr == errSkip {
		t.Skip("building Helm takes a couple of minutes: make test does it (CI=true), or set HELM")
	}
	require.NoError(t, helmErr)
	return helmBin
}

var errSkip = errors.New("skip")

func runHelm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := helmOutput(t, args...)
	require.NoError(t, err, "helm %s", strings.Join(args, " "))
	return out
}

// helmOutput runs helm, its error holding what it wrote.
func helmOutput(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w:\n%s%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// manifests holds the decoded objects of one rendering.
type manifests struct {
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	jobs         map[string]*batchv1.Job
	configMaps   []*corev1.ConfigMap
	secrets      []*corev1.Secret
	services     int
	podMonitors  []*podMonitor
	rules        []*prometheusRule
	kinds        map[string]int
}

// decodeStrict decodes YAML into v, refusing fields v does not have.
func decodeStrict(doc []byte, v any) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// kedaScaledObject is the part of KEDA's ScaledObject the chart uses.
type kedaScaledObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   map[string]any    `json:"metadata"`
	Spec       kedaScaledObjSpec `json:"spec"`
}

type kedaScaledObjSpec struct {
	ScaleTargetRef  struct{ Name string } `json:"scaleTargetRef"`
	MinReplicaCount int                   `json:"minReplicaCount"`
	MaxReplicaCount int                   `json:"maxReplicaCount"`
	PollingInterval int                   `json:"pollingInterval"`
	CooldownPeriod  int                   `json:"cooldownPeriod"`
	Triggers        []struct {
		Type              string                `json:"type"`
		Metadata          map[string]string     `json:"metadata"`
		AuthenticationRef struct{ Name string } `json:"authenticationRef"`
	} `json:"triggers"`
}

type kedaTriggerAuth struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		SecretTargetRef []struct{ Parameter, Name, Key string } `json:"secretTargetRef"`
	} `json:"spec"`
}

func render(t *testing.T, values string) manifests {
	t.Helper()
	out := runHelm(t, "template", "tp", chart, "-f", filepath.Join(chart, values))
	return decodeAll(t, out)
}

func decodeAll(t *testing.T, out string) manifests {
	t.Helper()
	m := manifests{deployments: map[string]*appsv1.Deployment{}, statefulSets: map[string]*appsv1.StatefulSet{},
		jobs: map[string]*batchv1.Job{}, kinds: map[string]int{}}
	for _, doc := range strings.Split(out, "\n---") {
		doc = strings.TrimSpace(doc)
		if doc == "" || strings.Trim(doc, "-\n ") == "" {
			continue
		}
		var head struct{ Kind string }
		require.NoError(t, yaml.Unmarshal([]byte(doc), &head))
		if head.Kind == "" {
			continue // a document of comments only
		}
		m.kinds[head.Kind]++
		var err error
		switch head.Kind {
		case "Deployment":
			v := &appsv1.Deployment{}
			err = decodeStrict([]byte(doc), v)
			m.deployments[v.Name] = v
		case "StatefulSet":
			v := &appsv1.StatefulSet{}
			err = decodeStrict([]byte(doc), v)
			m.statefulSets[v.Name] = v
		case "Job":
			v := &batchv1.Job{}
			err = decodeStrict([]byte(doc), v)
			m.jobs[v.Name] = v
		case "ConfigMap":
			v := &corev1.ConfigMap{}
			err = decodeStrict([]byte(doc), v)
			m.configMaps = append(m.configMaps, v)
		case "Secret":
			v := &corev1.Secret{}
			err = decodeStrict([]byte(doc), v)
			m.secrets = append(m.secrets, v)
		case "Service":
			err = decodeStrict([]byte(doc), &corev1.Service{})
			m.services++
		case "HorizontalPodAutoscaler":
			err = decodeStrict([]byte(doc), &autoscalingv2.HorizontalPodAutoscaler{})
		case "PodDisruptionBudget":
			err = decodeStrict([]byte(doc), &policyv1.PodDisruptionBudget{})
		case "NetworkPolicy":
			err = decodeStrict([]byte(doc), &networkingv1.NetworkPolicy{})
		case "ScaledObject":
			err = decodeStrict([]byte(doc), &kedaScaledObject{})
		case "TriggerAuthentication":
			err = decodeStrict([]byte(doc), &kedaTriggerAuth{})
		case "PodMonitor":
			v := &podMonitor{}
			err = decodeStrict([]byte(doc), v)
			m.podMonitors = append(m.podMonitors, v)
		case "PrometheusRule":
			v := &prometheusRule{}
			err = decodeStrict([]byte(doc), v)
			m.rules = append(m.rules, v)
		default:
			t.Errorf("unexpected kind %s", head.Kind)
		}
		require.NoError(t, err, "%s:\n%s", head.Kind, doc)
	}
	return m
}

func TestChartLintsAndRendersStrictly(t *testing.T) {
	for _, values := range valuesFiles {
		t.Run(values, func(t *testing.T) {
			runHelm(t, "lint", "--strict", chart, "-f", filepath.Join(chart, values))
			m := render(t, values)
			require.NotEmpty(t, m.kinds)
			checkInvariants(t, m)
		})
	}
}

// pipelinePods returns the pod templates of the chart's own workloads (not the bundled
// servers), by name.
func pipelinePods(m manifests) map[string]corev1.PodTemplateSpec {
	pods := map[string]corev1.PodTemplateSpec{}
	for name, d := range m.deployments {
		pods[name] = d.Spec.Template
	}
	for name, s := range m.statefulSets {
		if c := s.Spec.Template.Labels["app.kubernetes.io/component"]; c == "postgresql" || c == "redis" {
			continue
		}
		pods[name] = s.Spec.Template
	}
	for name, j := range m.jobs {
		pods[name] = j.Spec.Template
	}
	return pods
}

func checkInvariants(t *testing.T, m manifests) {
	for name, pod := range pipelinePods(m) {
		spec := pod.Spec
		require.NotNil(t, spec.SecurityContext, name)
		require.NotNil(t, spec.SecurityContext.RunAsNonRoot, name)
		assert.True(t, *spec.SecurityContext.RunAsNonRoot, "%s runs as non-root", name)
		for _, c := range spec.Containers {
			assert.Equal(t, "telemetry-pipeline:0.1.0", c.Image, name)
			sc := c.SecurityContext
			require.NotNil(t, sc, name)
			assert.False(t, *sc.AllowPrivilegeEscalation, "%s: no privilege escalation", name)
			assert.True(t, *sc.ReadOnlyRootFilesystem, "%s: read-only root filesystem", name)
			assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, name)
			assert.NotEmpty(t, c.Resources.Requests, "%s: resource requests", name)
			assert.NotEmpty(t, c.Resources.Limits, "%s: resource limits", name)
			if pod.Labels["app.kubernetes.io/component"] != "migrate" {
				require.NotNil(t, c.LivenessProbe, "%s: liveness probe", name)
				require.NotNil(t, c.ReadinessProbe, "%s: readiness probe", name)
				assert.Equal(t, "/health", c.LivenessProbe.HTTPGet.Path, name)
				assert.Equal(t, "/ready", c.ReadinessProbe.HTTPGet.Path, name)
			}
			for _, e := range c.Env {
				assert.NotContains(t, e.Value, "://", "%s: URLs come from Secrets, not literal env", name)
			}
		}
	}
	for name, st := range m.statefulSets {
		for _, c := range st.Spec.Template.Spec.Containers {
			require.NotNil(t, c.SecurityContext, name)
			assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem, "%s: read-only root filesystem, bundled servers too", name)
		}
	}
	for _, cm := range m.configMaps {
		for k, v := range cm.Data {
			assert.NotContains(t, strings.ToLower(k), "password", "secret in ConfigMap %s", cm.Name)
			assert.NotContains(t, v, "://", "a URL (which may carry a password) in ConfigMap %s", cm.Name)
		}
	}
}

func TestDefaultValuesRunEveryModeApart(t *testing.T) {
	m := render(t, "values.yaml")
	modeOf := func(spec corev1.PodSpec) string {
		for _, a := range spec.Containers[0].Args {
			if mode, ok := strings.CutPrefix(a, "--mode="); ok {
				return mode
			}
		}
		return ""
	}
	modes := map[string]string{}
	for name, d := range m.deployments {
		modes[modeOf(d.Spec.Template.Spec)] = "Deployment " + name
	}
	for name, s := range m.statefulSets {
		if mode := modeOf(s.Spec.Template.Spec); mode != "" {
			modes[mode] = "StatefulSet " + name
		}
	}
	assert.Equal(t, map[string]string{
		"api":       "Deployment tp-telemetry-pipeline-api",
		"collector": "Deployment tp-telemetry-pipeline-collector",
		"streamer":  "StatefulSet tp-telemetry-pipeline-streamer",
	}, modes)
	streamer := m.statefulSets["tp-telemetry-pipeline-streamer"]
	assert.Contains(t, streamer.Spec.Template.Spec.Containers[0].Args, "--shard=ordinal/2", "shards follow the pod ordinal")
	job := m.jobs["tp-telemetry-pipeline-migrate"]
	require.NotNil(t, job)
	assert.Contains(t, job.Annotations["helm.sh/hook"], "pre-upgrade")
	assert.Equal(t, 3, m.kinds["PodDisruptionBudget"])
	assert.Equal(t, 1, m.kinds["HorizontalPodAutoscaler"])
	assert.Zero(t, m.kinds["ScaledObject"], "KEDA is off by default")
}

func TestEdgeAndCentralSplitTheWork(t *testing.T) {
	edge := render(t, "values-edge-cluster.yaml")
	assert.Empty(t, edge.deployments, "edge runs streamers only")
	require.Len(t, edge.statefulSets, 1)
	assert.Empty(t, edge.secrets, "edge takes Redis credentials from an existing Secret")
	env := edge.statefulSets["tp-telemetry-pipeline-streamer"].Spec.Template.Spec.Containers[0].Env
	require.Len(t, env, 1)
	assert.Equal(t, "telemetry-redis", env[0].ValueFrom.SecretKeyRef.Name)

	central := render(t, "values-central-cluster.yaml")
	assert.Len(t, central.deployments, 2)
	assert.Empty(t, central.statefulSets, "no streamers and no bundled servers centrally")
	assert.Equal(t, 1, central.kinds["ScaledObject"], "collectors follow the backlog")
	assert.Nil(t, central.deployments["tp-telemetry-pipeline-collector"].Spec.Replicas, "KEDA owns the replica count")
}

// TestStrictDecodingCatchesTypos shows a misspelt field in a template would fail the checks.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	out := runHelm(t, "template", "tp", chart)
	broken := strings.Replace(out, "readinessProbe:", "readinesProbe:", 1)
	require.NotEqual(t, out, broken)
	for _, doc := range strings.Split(broken, "\n---") {
		if strings.Contains(doc, "readinesProbe") {
			assert.ErrorContains(t, decodeStrict([]byte(doc), &appsv1.Deployment{}), "readinesProbe")
		}
	}
}

// TestLiveValuesScrapeAndReceive: the live values make the streamers scrape dcgm-exporter
// through DNS and receive remote_write behind a Service of their own, without the sample.
func TestLiveValuesScrapeAndReceive(t *testing.T) {
	base := decodeAll(t, runHelm(t, "template", "tp", chart, "-f", filepath.Join(chart, "values-same-cluster.yaml")))
	live := decodeAll(t, runHelm(t, "template", "tp", chart, "-f", filepath.Join(chart, "values-same-cluster.yaml"),
		"-f", filepath.Join(chart, "values-live.yaml")))
	checkInvariants(t, live)
	streamer := live.statefulSets["tp-telemetry-pipeline-streamer"]
	require.NotNil(t, streamer)
	args := streamer.Spec.Template.Spec.Containers[0].Args
	assert.Contains(t, args, "--scrape-dns=nvidia-dcgm-exporter.gpu-operator.svc.cluster.local:9400")
	assert.Contains(t, args, "--remote-write")
	// Two requests of 8 MiB, each held twice, and their batches fit the streamer's 128 MiB.
	assert.Contains(t, args, "--remote-write-max-body=8388608")
	assert.Contains(t, args, "--remote-write-max-concurrency=2")
	assert.Contains(t, args, "--remote-write-max-new-devices=10000")
	assert.Equal(t, "128Mi", streamer.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String())
	assert.Contains(t, args, "--shard=ordinal/3", "targets split among the replicas")
	for _, a := range args {
		assert.NotContains(t, a, "--csv", "a live source named: no sample beside it")
	}
	assert.Equal(t, base.kinds["Service"]+1, live.kinds["Service"], "the receiver's Service")
}

// The bundled PostgreSQL and Redis get passwords of their own, generated when none is
// given, the same in the servers and in the URLs the pipeline reads; Redis requires its.
func TestBundledServersGetGeneratedPasswords(t *testing.T) {
	secretOf := func(m manifests) map[string]string {
		for _, s := range m.secrets {
			if s.Name == "tp-telemetry-pipeline-urls" {
				return s.StringData
			}
		}
		t.Fatal("no Secret tp-telemetry-pipeline-urls")
		return nil
	}
	one, two := render(t, "values.yaml"), render(t, "values.yaml")
	a, b := secretOf(one), secretOf(two)
	for _, key := range []string{"POSTGRES_PASSWORD", "REDIS_PASSWORD"} {
		assert.Len(t, a[key], 32, key)
		assert.NotEqual(t, a[key], b[key], "%s is random per installation (kept on upgrade by reading it back)", key)
	}
	assert.Contains(t, a["DATABASE_URL"], "telemetry:"+a["POSTGRES_PASSWORD"]+"@")
	assert.Contains(t, a["REDIS_URL"], "redis://:"+a["REDIS_PASSWORD"]+"@")
	assert.NotContains(t, runHelm(t, "template", "tp", chart), "password: telemetry")

	pg := one.statefulSets["tp-telemetry-pipeline-postgresql"].Spec.Template.Spec.Containers[0]
	redis := one.statefulSets["tp-telemetry-pipeline-redis"].Spec.Template.Spec.Containers[0]
	envRef := func(c corev1.Container, name string) *corev1.SecretKeySelector {
		for _, e := range c.Env {
			if e.Name == name && e.ValueFrom != nil {
				return e.ValueFrom.SecretKeyRef
			}
		}
		return nil
	}
	require.NotNil(t, envRef(pg, "POSTGRES_PASSWORD"))
	assert.Equal(t, corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "tp-telemetry-pipeline-urls"}, Key: "POSTGRES_PASSWORD"},
		*envRef(pg, "POSTGRES_PASSWORD"))
	require.NotNil(t, envRef(redis, "REDIS_PASSWORD"))
	assert.Equal(t, "REDIS_PASSWORD", envRef(redis, "REDIS_PASSWORD").Key)
	assert.Contains(t, strings.Join(redis.Args, " "), "--requirepass $(REDIS_PASSWORD)")

	given := decodeAll(t, runHelm(t, "template", "tp", chart, "--set", "postgresql.password=pg-Given.1", "--set", "redisServer.password=rd-Given.2"))
	g := secretOf(given)
	assert.Equal(t, "pg-Given.1", g["POSTGRES_PASSWORD"])
	assert.Equal(t, "rd-Given.2", g["REDIS_PASSWORD"])

	cmd := exec.Command(helm(t), "template", "tp", chart, "--set", "postgresql.password=a@b")
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "postgresql.password: use letters, digits")

	keda := decodeAll(t, runHelm(t, "template", "tp", chart, "--set", "collector.keda.enabled=true"))
	assert.Equal(t, 1, keda.kinds["TriggerAuthentication"])
	for _, s := range keda.secrets {
		assert.NotEqual(t, "tp-telemetry-pipeline-keda", s.Name, "KEDA reads the bundled Redis' generated password from the chart's Secret")
	}
}

// A web config Secret is mounted into every process, named by TELEMETRY_WEB_CONFIG_FILE,
// and with TLS the probes speak HTTPS.
func TestWebConfigSecretReachesEveryProcess(t *testing.T) {
	m := decodeAll(t, runHelm(t, "template", "tp", chart, "--set", "web.existingSecret=telemetry-web", "--set", "web.tls=true",
		"--set", "streamer.csv.source=configMap", "--set", "streamer.csv.configMap=my-csv"))
	checkInvariants(t, m)
	for name, pod := range pipelinePods(m) {
		if pod.Labels["app.kubernetes.io/component"] == "migrate" {
			continue
		}
		spec := pod.Spec
		var vol *corev1.Volume
		for i := range spec.Volumes {
			if spec.Volumes[i].Name == "web" {
				vol = &spec.Volumes[i]
			}
		}
		require.NotNil(t, vol, name)
		assert.Equal(t, "telemetry-web", vol.Secret.SecretName, name)
		c := spec.Containers[0]
		var env string
		for _, e := range c.Env {
			if e.Name == "TELEMETRY_WEB_CONFIG_FILE" {
				env = e.Value
			}
		}
		assert.Equal(t, "/etc/telemetry/web/web.yml", env, name)
		var mounted bool
		for _, vm := range c.VolumeMounts {
			mounted = mounted || (vm.Name == "web" && vm.MountPath == "/etc/telemetry/web" && vm.ReadOnly)
		}
		assert.True(t, mounted, name)
		assert.Equal(t, corev1.URISchemeHTTPS, c.LivenessProbe.HTTPGet.Scheme, name)
		assert.Equal(t, corev1.URISchemeHTTPS, c.ReadinessProbe.HTTPGet.Scheme, name)
	}
	streamer := m.statefulSets["tp-telemetry-pipeline-streamer"].Spec.Template.Spec
	assert.Len(t, streamer.Volumes, 2, "the CSV and the web config")
}
