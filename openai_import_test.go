package kefu_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyBotsAndKBImportOpenAI: go-openai is imported directly by bots
// (the LLM stage) and kb (embeddings) and by nothing else; other packages
// reach a model through them. TestPackageArrows checks the transitive
// side. go list -e keeps listing packages whose dependencies are missing
// on a branch, so this rule holds on every branch.
func TestOnlyBotsAndKBImportOpenAI(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-f",
		"{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}",
		"./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, "github.com/sashabaranov/go-openai") {
				continue
			}
			checked++
			if pkg != "bots" && pkg != "kb" {
				t.Errorf("%s imports %s: only bots and kb may", pkg, imp)
			}
		}
	}
	if checked == 0 {
		t.Error("no package imports go-openai: the rule checks nothing")
	}
}
