// Package console is the web console: a fleet heatmap, a device's charts, idle and
// unhealthy devices, and usage reports, as pages over the REST API. Its files are embedded
// in the binary, the charting library (uPlot) vendored from npm into static/vendor by
// `make console-vendor`: a browser fetches nothing from anywhere else.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// AssetPrefix is where the console's files are served; index.html is served at "/".
const AssetPrefix = "/ui/"

// securityPolicy lets the pages load only their own files and call only their own origin.
// uPlot sizes its elements through inline styles.
const securityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

type file struct {
	body []byte
	etag string
	kind string
}

// Handler serves index.html at "/" and the other files under AssetPrefix. Files are
// revalidated by their content's hash: a new binary's console is picked up at once, an
// unchanged one answers 304.
func Handler() http.Handler {
	files := map[string]file{}
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		files[strings.TrimPrefix(name, "static/")] = file{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, kind: contentType(name)}
		return nil
	})
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if r.URL.Path != "/" {
			name = strings.TrimPrefix(path.Clean(r.URL.Path), AssetPrefix)
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.kind)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		if name == "index.html" {
			h.Set("Content-Security-Policy", securityPolicy)
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	return "text/plain; charset=utf-8"
}
