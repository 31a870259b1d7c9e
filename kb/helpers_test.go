package kb

import (
	"os"
	"testing"
)

// loadDemo reads the demo knowledge base (a copy of faq-demo.json).
func loadDemo(t testing.TB) []Entry {
	t.Helper()
	f, err := os.Open("testdata/faq-demo.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := ParseJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func buildDemo(t testing.TB) *Index {
	t.Helper()
	idx, err := Build(loadDemo(t), IndexConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return idx
}
