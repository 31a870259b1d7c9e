package main

import (
	"compress/gzip"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestWebUI: the binary serves the embedded workspace and chat widget with
// their security policy: the workspace is never framed, the widget may be
// (by any site, or only by the configured origins), and hashed assets are
// cached for good and sent compressed.
func TestWebUI(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.HTTP.WidgetFrameAncestors = []string{"https://shop.example"}
	s := startServer(t, cfg)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, header ...string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, s.url(path), nil)
		req.Header.Set("Accept-Encoding", "identity")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}

	res, _ := get("/")
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/workspace/" {
		t.Errorf("/ = %d to %q, want a redirect to /workspace/", res.StatusCode, res.Header.Get("Location"))
	}
	res, page := get("/workspace/")
	if res.StatusCode != 200 || !strings.Contains(page, `<div id="app">`) {
		t.Fatalf("/workspace/ = %d %q", res.StatusCode, page)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("workspace may be framed or run foreign scripts: CSP %q, X-Frame-Options %q", csp, res.Header.Get("X-Frame-Options"))
	}
	res, chat := get("/chat/?tenant=demo")
	if csp := res.Header.Get("Content-Security-Policy"); res.StatusCode != 200 || !strings.Contains(csp, "frame-ancestors https://shop.example") || res.Header.Get("X-Frame-Options") != "" {
		t.Errorf("/chat/ = %d, CSP %q, X-Frame-Options %q: want framing by the configured origin only", res.StatusCode, csp, res.Header.Get("X-Frame-Options"))
	}

	asset := regexp.MustCompile(`/assets/[^"]+\.js`).FindString(chat)
	if asset == "" {
		t.Fatalf("no script in the chat page: %s", chat)
	}
	res, plain := get(asset)
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") || !strings.Contains(res.Header.Get("Content-Type"), "javascript") {
		t.Errorf("%s = %d, %q, %q", asset, res.StatusCode, res.Header.Get("Cache-Control"), res.Header.Get("Content-Type"))
	}
	res, zipped := get(asset, "Accept-Encoding", "gzip")
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("asset not compressed for a gzip client")
	}
	zr, err := gzip.NewReader(strings.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	if unzipped, _ := io.ReadAll(zr); string(unzipped) != plain {
		t.Errorf("the gzip form differs from the file")
	}
	if res, _ := get(asset, "If-None-Match", res.Header.Get("ETag")); res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with the ETag = %d, want 304", res.StatusCode)
	}
	if res, _ := get("/assets/missing.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("missing asset = %d, want 404", res.StatusCode)
	}
}
