package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/telemetry-pipeline/telemetry-pipeline"

// forbiddenInCore are the technologies domain/ and ports/ must not depend on, directly or
// through another package.
var forbiddenInCore = []string{
	"github.com/gin-gonic/", "gorm.io/", "github.com/hibiken/asynq", "github.com/redis/",
	"github.com/go-redis/", "github.com/spf13/viper", "net/http",
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, patterns...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	require.NoError(t, err)
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		require.NoError(t, dec.Decode(&p))
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// violations lists the forbidden dependencies of each package.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		for _, dep := range p.Deps {
			for _, bad := range forbiddenInCore {
				if dep == strings.TrimSuffix(bad, "/") || strings.HasPrefix(dep, bad) {
					out = append(out, p.ImportPath+" depends on "+dep)
				}
			}
		}
	}
	return out
}

func TestArchitecture(t *testing.T) {
	t.Run("domain and ports use no framework", func(t *testing.T) {
		core := listPackages(t, "./domain/...", "./ports")
		require.NotEmpty(t, core)
		assert.Empty(t, violations(core))

		// The check itself can fail: the HTTP adapter trips it.
		assert.NotEmpty(t, violations(listPackages(t, "./adapters/httpapi")))
	})

	t.Run("adapters do not import each other", func(t *testing.T) {
		for _, p := range listPackages(t, "./adapters/...") {
			own := strings.TrimPrefix(p.ImportPath, module+"/adapters/")
			own, _, _ = strings.Cut(own, "/")
			for _, imp := range p.Imports {
				if other, ok := strings.CutPrefix(imp, module+"/adapters/"); ok {
					other, _, _ = strings.Cut(other, "/")
					assert.Equal(t, own, other, "%s imports %s", p.ImportPath, imp)
				}
			}
		}
	})

	t.Run("the storage engine holds no SQL", func(t *testing.T) {
		engine := listPackages(t, "./adapters/sqlstore/engine")
		require.Len(t, engine, 1)
		for _, dep := range engine[0].Deps {
			for _, db := range []string{"database/sql", "github.com/jackc/", "gorm.io/", "modernc.org/sqlite", "github.com/glebarez/"} {
				assert.False(t, dep == strings.TrimSuffix(db, "/") || strings.HasPrefix(dep, db), "the engine depends on %s", dep)
			}
		}
		store := listPackages(t, "./adapters/sqlstore")
		assert.Contains(t, store[0].Deps, "database/sql", "the check can fail: the store trips it")
	})

	t.Run("viper is read only in config", func(t *testing.T) {
		getter := regexp.MustCompile(`\bviper\.Get|\bv\.Get(String|Int|Bool|Duration)\(`)
		err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			if filepath.Dir(path) == filepath.Join("..", "config") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			assert.NotRegexp(t, getter, string(src), path)
			return nil
		})
		require.NoError(t, err)
	})

	t.Run("config knows no domain package", func(t *testing.T) {
		// Settings are text and numbers: the composition root turns them into domain values.
		for _, p := range listPackages(t, "./config") {
			for _, dep := range p.Deps {
				assert.False(t, strings.HasPrefix(dep, module+"/domain/"), "%s depends on %s", p.ImportPath, dep)
			}
		}
	})
}
