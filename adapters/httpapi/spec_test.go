package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/swaggo/swag"

	"github.com/swaggo/swag/gen"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/httpapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// TestCommittedSpecMatchesAnnotations regenerates the OpenAPI description from the handlers'
// annotations, as make swagger does, and fails when docs/ was not regenerated after a change.
func TestCommittedSpecMatchesAnnotations(t *testing.T) {
	out := t.TempDir()
	err := gen.New().Build(&gen.Config{
		SearchDir: ".", MainAPIFile: "router.go", OutputDir: out, OutputTypes: []string{"json"},
		PropNamingStrategy: swag.CamelCase, ParseDepth: 100, ParseGoList: true,
		LeftTemplateDelim: "{{", RightTemplateDelim: "}}", CollectionFormat: "csv",
		Debugger: log.New(io.Discard, "", 0),
	})
	require.NoError(t, err)
	fresh, err := os.ReadFile(filepath.Join(out, "swagger.json"))
	require.NoError(t, err)
	committed, err := os.ReadFile("../../docs/swagger.json")
	require.NoError(t, err)
	assert.JSONEq(t, string(fresh), string(committed), "docs/ is stale: run make swagger")
}

// TestEveryDocumentedRouteAnswers calls every route of the served spec with its path
// parameters filled in and expects the documented success.
func TestEveryDocumentedRouteAnswers(t *testing.T) {
	api := newAPI(t, func(o *httpapi.Options) {
		o.RemoteWrite = func(context.Context, *http.Request) error { return nil }
		o.Targets = func() []telemetry.Target { return []telemetry.Target{{URL: "http://h:9400/metrics", Health: "up"}} }
	})
	var spec struct {
		Paths map[string]map[string]struct {
			Responses  map[string]any `json:"responses"`
			Produces   []string       `json:"produces"`
			Parameters []struct {
				Name     string `json:"name"`
				In       string `json:"in"`
				Required bool   `json:"required"`
				Example  any    `json:"example"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	require.Equal(t, http.StatusOK, get(t, api, "/swagger/doc.json", &spec).Code)
	require.NotEmpty(t, spec.Paths)
	for path, ops := range spec.Paths {
		for method, op := range ops {
			if method == "post" {
				rec := httptest.NewRecorder()
				api.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
				assert.Equal(t, http.StatusNoContent, rec.Code, path)
				continue
			}
			require.Equal(t, "get", method, path)
			require.Contains(t, op.Responses, "200", path)
			target := strings.ReplaceAll(path, "{uuid}", gpuA)
			required := url.Values{} // with the examples the spec gives
			for _, p := range op.Parameters {
				if p.Required && p.In == "query" {
					required.Set(p.Name, fmt.Sprint(p.Example))
				}
			}
			if len(required) > 0 {
				target += "?" + required.Encode()
			}
			rec := get(t, api, target, nil)
			assert.Equal(t, http.StatusOK, rec.Code, "%s: %s", target, rec.Body.String())
			if path != "/health" && path != "/ready" && !slices.Contains(op.Produces, "text/csv") {
				assert.True(t, json.Valid(rec.Body.Bytes()), target)
			}
		}
	}
}
