package kefu_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/kefu-dev/kefu"

// packages returns every package of the module with its transitive
// dependencies (go list -deps), excluding tests.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkgs[fields[0]] = fields[1:]
	}
	return pkgs
}

func rel(pkg string) string { return strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/") }

func under(pkg string, roots ...string) bool {
	r := rel(pkg)
	for _, root := range roots {
		if r == root || strings.HasPrefix(r, root+"/") {
			return true
		}
	}
	return false
}

// TestPackageArrows enforces DESIGN.md's dependency rules: edge -> cluster/
// actors -> bots, kb -> engine <- store; engine imports nothing from the
// module; only store reaches a database driver, only edge reaches Fiber,
// only bots and kb reach go-openai, only cmd reaches config, only cluster
// reaches etcd. FerretDB, the MongoDB stand-in of the tests, is reached by
// store/mongo/mongotest only, and etcd's test process is started by
// cluster/clustertest only, which only tests import: never by the kefu
// binary.
func TestPackageArrows(t *testing.T) {
	type rule struct {
		dep     string   // an import path prefix
		allowed []string // module packages that may depend on it, transitively
	}
	rules := []rule{
		{"modernc.org/sqlite", []string{"store", "cmd"}},
		{"go.mongodb.org/mongo-driver", []string{"store", "cmd"}},
		{"github.com/FerretDB/", []string{"store/mongo/mongotest"}},
		{"github.com/jackc/pgx", []string{"store/mongo/mongotest"}}, // FerretDB's other backends
		{"github.com/go-sql-driver/mysql", []string{"store/mongo/mongotest"}},
		{"github.com/SAP/go-hdb", []string{"store/mongo/mongotest"}},
		{"github.com/gofiber/", []string{"edge", "cmd"}},
		{"github.com/sashabaranov/go-openai", []string{"bots", "kb", "actors", "edge", "cmd"}},
		{module + "/config", []string{"cmd", "config"}},
		{module + "/edge", []string{"edge", "cmd"}},
		{module + "/store", []string{"store", "cmd"}},
		{module + "/store/storetest", []string{"store/storetest"}}, // tests only
		{module + "/cluster", []string{"cluster", "cmd"}},
		{module + "/cluster/clustertest", []string{"cluster/clustertest"}}, // tests only
		{"go.etcd.io/etcd", []string{"cluster", "cmd"}},
		{module + "/actors", []string{"actors", "edge", "cmd"}},
	}
	for pkg, deps := range packages(t) {
		if pkg == module {
			continue
		}
		for _, dep := range deps {
			if under(pkg, "engine") && strings.HasPrefix(dep, module) {
				t.Errorf("engine must import nothing from the module: %s imports %s", rel(pkg), rel(dep))
			}
			if under(pkg, "engine") && strings.Contains(strings.Split(dep, "/")[0], ".") {
				t.Errorf("engine must use the standard library only: %s depends on %s", rel(pkg), dep)
			}
			for _, r := range rules {
				if strings.HasPrefix(dep, r.dep) && !under(pkg, r.allowed...) {
					t.Errorf("%s must not depend on %s (allowed only under %v)", rel(pkg), dep, r.allowed)
				}
			}
		}
	}
}

// TestEveryPackageHasDoc checks that each package has a doc.go with a
// package comment.
func TestEveryPackageHasDoc(t *testing.T) {
	for pkg := range packages(t) {
		dir := filepath.Join(".", rel(pkg))
		data, err := os.ReadFile(filepath.Join(dir, "doc.go"))
		if err != nil {
			t.Errorf("%s has no doc.go", dir)
			continue
		}
		if !strings.Contains(string(data), "// Package ") && !strings.Contains(string(data), "// Command ") {
			t.Errorf("%s/doc.go has no package comment", dir)
		}
	}
}

// TestBinaryLinksNoTestServer builds the list of what the kefu binary
// links and checks FerretDB is not in it.
func TestBinaryLinksNoTestServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./cmd/kefu").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/FerretDB/") || strings.HasPrefix(dep, module+"/store/mongo/mongotest") ||
			strings.HasPrefix(dep, module+"/store/storetest") || strings.HasPrefix(dep, module+"/cluster/clustertest") {
			t.Errorf("cmd/kefu links %s, which is for tests only", dep)
		}
	}
}
