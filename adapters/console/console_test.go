package console_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/console"
)

func get(t *testing.T, h http.Handler, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestServesThePageAndItsFiles(t *testing.T) {
	h := console.Handler()
	page := get(t, h, "/")
	require.Equal(t, http.StatusOK, page.Code)
	assert.Equal(t, "text/html; charset=utf-8", page.Header().Get("Content-Type"))
	assert.Contains(t, page.Header().Get("Content-Security-Policy"), "default-src 'self'")
	body := page.Body.String()
	for _, file := range []string{"ui/app.js", "ui/app.css", "ui/vendor/uPlot.iife.min.js", "ui/vendor/uPlot.min.css"} {
		assert.Contains(t, body, `"`+file+`"`, "the page loads %s", file)
		rec := get(t, h, "/"+file)
		assert.Equal(t, http.StatusOK, rec.Code, file)
		assert.NotEmpty(t, rec.Body.Bytes(), file)
		etag := rec.Header().Get("ETag")
		require.NotEmpty(t, etag, file)
		assert.Equal(t, http.StatusNotModified, get(t, h, "/"+file, "If-None-Match", etag).Code, "an unchanged file is not sent again")
	}
	assert.NotContains(t, body, "http://", "nothing is fetched from elsewhere")
	assert.NotContains(t, body, "https://")
	assert.Equal(t, "text/javascript; charset=utf-8", get(t, h, "/ui/app.js").Header().Get("Content-Type"))
	assert.Equal(t, http.StatusNotFound, get(t, h, "/ui/missing.js").Code)
	assert.Equal(t, http.StatusNotFound, get(t, h, "/ui/../console.go").Code)
}

// The vendored files are npm's, as make console-vendor copied them.
func TestVendoredFilesAreTheRecordedOnes(t *testing.T) {
	f, err := os.Open("vendor.sha256")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		require.True(t, ok, sc.Text())
		body, err := os.ReadFile(name)
		require.NoError(t, err)
		got := sha256.Sum256(body)
		assert.Equal(t, sum, hex.EncodeToString(got[:]), "%s changed: run make console-vendor", name)
		n++
	}
	require.NoError(t, sc.Err())
	entries, err := os.ReadDir("static/vendor")
	require.NoError(t, err)
	assert.Equal(t, len(entries), n, "every vendored file is recorded")
}
