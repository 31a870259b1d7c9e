package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKBCommand: `kefu kb import` upserts into a store a server created,
// with versions bumped, --replace deletes the rest, and export round-trips.
func TestKBCommand(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := startServer(t, cfg)
	s.stop(t) // the first start created the demo tenant and its 29+ entries
	env := func(string) string { return "" }
	kbRun := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"kb"}, args...), &out, &errOut, env)
		return out.String(), errOut.String(), code
	}
	file := filepath.Join(t.TempDir(), "extra.csv")
	csv := "id,category,question,similar,answer,tags,enabled\nfaq-x1,会员,积分怎么用,积分能干嘛|积分抵现,积分可抵扣订单金额。,积分,true\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := kbRun("import", file, "--tenant", "demo", "-data_dir", cfg.DataDir)
	if code != 0 || !strings.Contains(out, "imported 1 entries") {
		t.Fatalf("import: %d %q %q", code, out, errOut)
	}
	out, _, code = kbRun("export", "--tenant", "demo", "-data_dir", cfg.DataDir)
	if code != 0 || !strings.Contains(out, `"faq-x1"`) || !strings.Contains(out, `"faq-001"`) {
		t.Fatalf("export: %d %.200q", code, out)
	}
	if _, _, code := kbRun("import", file, "--tenant", "demo", "--replace", "-data_dir", cfg.DataDir); code != 0 {
		t.Fatalf("import --replace: %d", code)
	}
	out, _, _ = kbRun("export", "--tenant", "demo", "--format", "csv", "-data_dir", cfg.DataDir)
	if lines := strings.Count(strings.TrimSpace(out), "\n"); lines != 1 || !strings.Contains(out, "faq-x1") {
		t.Fatalf("after --replace the knowledge base is %q", out)
	}
	if _, errOut, code := kbRun("import", file, "--tenant", "nobody", "-data_dir", cfg.DataDir); code == 0 || !strings.Contains(errOut, "nobody") {
		t.Fatalf("unknown tenant: %d %q", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	_ = os.WriteFile(bad, []byte(`[{"id":"x","question":"","answer":"a"}]`), 0o600)
	if _, errOut, code := kbRun("import", bad, "--tenant", "demo", "-data_dir", cfg.DataDir); code == 0 || !strings.Contains(errOut, "question") {
		t.Fatalf("invalid entry: %d %q", code, errOut)
	}
}
