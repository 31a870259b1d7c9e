package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	evalKB  = "../../kb/testdata/faq-demo.json"
	evalSet = "../../bots/eval/testdata/kb-eval-dev.jsonl"
)

func TestEvalCommandJSON(t *testing.T) {
	t.Setenv("KEFU_LLM_BASE_URL", "")
	t.Setenv("KEFU_LLM_MODEL", "")
	var out, errOut bytes.Buffer
	if code := runEval([]string{"--kb", evalKB, "--set", evalSet, "--json"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out.String())
	}
	for _, k := range []string{"answerable_top1", "human_recall", "human_precision", "none_false_answer_rate", "n"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("missing %q", k)
		}
	}
	if rep["n"].(float64) != 120 {
		t.Errorf("n = %v", rep["n"])
	}
}

func TestEvalCommandText(t *testing.T) {
	t.Setenv("KEFU_LLM_BASE_URL", "")
	t.Setenv("KEFU_LLM_MODEL", "")
	var out, errOut bytes.Buffer
	if code := runEval([]string{"--kb", evalKB, "--set", evalSet}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"FAQ-only", "answerable_top1", "none_false_answer_rate", "confusions"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestEvalCommandErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte("not json\n"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"--kb", evalKB}, 2},
		{[]string{"--kb", evalKB, "--set", evalSet, "extra"}, 2},
		{[]string{"--nope"}, 2},
		{[]string{"--kb", "missing.json", "--set", evalSet}, 1},
		{[]string{"--kb", evalKB, "--set", bad}, 1},
		{[]string{"--kb", evalKB, "--set", evalSet, "--llm-model", "m"}, 1}, // no base URL
		{[]string{"-h"}, 0},
	} {
		var out, errOut bytes.Buffer
		if code := runEval(tc.args, &out, &errOut); code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errOut.String())
		}
	}
}
