package kb

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// bagEmbedder embeds text as a hashed bag of characters, plus an
// override: texts containing a key are pulled towards that key's topic,
// standing in for a model that knows two phrasings mean the same.
type bagEmbedder struct {
	topics map[string]int // substring -> dimension it adds weight to
	fail   atomic.Bool
	calls  atomic.Int64
}

const bagDim = 64

func (b *bagEmbedder) vector(s string) []float32 {
	v := make([]float32, bagDim+8)
	for _, r := range s {
		h := fnv.New32a()
		h.Write([]byte(string(r)))
		v[h.Sum32()%bagDim]++
	}
	for sub, dim := range b.topics {
		if strings.Contains(s, sub) {
			v[bagDim+dim] += 20
		}
	}
	return v
}

func (b *bagEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	b.calls.Add(1)
	if b.fail.Load() {
		return nil, errors.New("embedding service down")
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = b.vector(t)
	}
	return out, nil
}

func TestEmbeddingRerank(t *testing.T) {
	// The model "knows" that last year's points are about points expiring.
	emb := &bagEmbedder{topics: map[string]int{"过期": 1, "清零": 1, "去年": 1, "有效期": 1}}
	idx, err := BuildContext(context.Background(), loadDemo(t), IndexConfig{Embedder: emb, EmbedWeight: 0.6})
	if err != nil {
		t.Fatal(err)
	}
	if !idx.Semantic() {
		t.Fatal("index has no embeddings")
	}
	q := "去年的积分今年还能用吗"
	lexical := idx.Search(q, 3)
	reranked, err := idx.SearchContext(context.Background(), q, 3)
	if err != nil {
		t.Fatal(err)
	}
	if lexical[0].EntryID == "faq-041" {
		t.Fatalf("the test needs a query the lexical ranking gets wrong; got %+v", lexical[0])
	}
	if reranked[0].EntryID != "faq-041" {
		t.Errorf("re-ranked first = %s, want faq-041 (lexical first %s)", reranked[0].EntryID, lexical[0].EntryID)
	}
	for _, c := range reranked {
		if c.Confidence < 0 || c.Confidence > 1 {
			t.Errorf("confidence %v", c.Confidence)
		}
	}

	// A failing embedder at query time: the lexical ranking and the error.
	emb.fail.Store(true)
	got, err := idx.SearchContext(context.Background(), q, 3)
	if err == nil {
		t.Error("no error from a failing embedder")
	}
	if len(got) != 3 || got[0].EntryID != lexical[0].EntryID {
		t.Errorf("on failure got %+v, want the lexical ranking", got)
	}
}

func TestBuildContextKeepsLexicalIndexWhenEmbeddingFails(t *testing.T) {
	emb := &bagEmbedder{}
	emb.fail.Store(true)
	idx, err := BuildContext(context.Background(), loadDemo(t), IndexConfig{Embedder: emb})
	if err == nil || idx == nil || idx.Semantic() || idx.Len() == 0 {
		t.Fatalf("idx %v, err %v", idx, err)
	}
	if c, err := idx.SearchContext(context.Background(), "优惠券怎么用", 1); err != nil || c[0].EntryID != "faq-033" {
		t.Errorf("lexical search after failed embedding: %+v %v", c, err)
	}
	// Build never calls the embedder.
	emb2 := &bagEmbedder{}
	if _, err := Build(loadDemo(t), IndexConfig{Embedder: emb2}); err != nil || emb2.calls.Load() != 0 {
		t.Errorf("Build called the embedder %d times (%v)", emb2.calls.Load(), err)
	}
}

// embeddingsServer speaks the OpenAI embeddings protocol: it answers
// POST /v1/embeddings with the vectors of bagEmbedder, in shuffled order,
// as OpenAI does not promise order, and records the batch sizes.
func embeddingsServer(t *testing.T, fail func(n int) (int, string)) (*httptest.Server, *[]int) {
	var mu sync.Mutex
	var batches []int
	emb := &bagEmbedder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/embeddings" || r.Method != http.MethodPost {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if r.Header.Get("Authorization") != "Bearer k-123" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}`))
			return
		}
		var req struct {
			Input []string `json:"input"`
			Model string   `json:"model"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model != "emb-1" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		batches = append(batches, len(req.Input))
		n := len(batches)
		mu.Unlock()
		if fail != nil {
			if code, body := fail(n); code != 0 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				w.Write([]byte(body))
				return
			}
		}
		type item struct {
			Object    string    `json:"object"`
			Embedding []float32 `json:"embedding"`
			Index     int       `json:"index"`
		}
		data := make([]item, len(req.Input))
		for i, s := range req.Input {
			j := len(req.Input) - 1 - i // reversed
			data[j] = item{"embedding", emb.vector(s), i}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "model": req.Model,
			"usage": map[string]int{"prompt_tokens": 1, "total_tokens": 1}})
	}))
	t.Cleanup(srv.Close)
	return srv, &batches
}

func TestOpenAIEmbedder(t *testing.T) {
	srv, batches := embeddingsServer(t, nil)
	e, err := NewOpenAIEmbedder(OpenAIEmbedderConfig{BaseURL: srv.URL + "/v1/", Model: "emb-1", APIKey: "k-123", BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"退货", "退款", "发票", "运费", "积分"}
	vecs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(*batches) != 3 || (*batches)[0] != 2 || (*batches)[2] != 1 {
		t.Errorf("batches %v, want [2 2 1]", *batches)
	}
	ref := &bagEmbedder{}
	for i, s := range texts {
		want := ref.vector(s)
		for j := range want {
			if vecs[i][j] != want[j] {
				t.Fatalf("vector %d (%q) is not in input order", i, s)
			}
		}
	}
	// A whole index through the HTTP embedder.
	idx, err := BuildContext(context.Background(), loadDemo(t), IndexConfig{Embedder: e})
	if err != nil || !idx.Semantic() {
		t.Fatalf("BuildContext: %v", err)
	}
	if _, err := NewOpenAIEmbedder(OpenAIEmbedderConfig{Model: "x"}); err == nil {
		t.Error("missing base URL accepted")
	}
}

func TestOpenAIEmbedderErrors(t *testing.T) {
	srv, _ := embeddingsServer(t, func(n int) (int, string) {
		if n == 2 {
			return http.StatusTooManyRequests, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`
		}
		return 0, ""
	})
	e, _ := NewOpenAIEmbedder(OpenAIEmbedderConfig{BaseURL: srv.URL + "/v1", Model: "emb-1", APIKey: "k-123", BatchSize: 1})
	_, err := e.Embed(context.Background(), []string{"a", "b", "c"})
	if !errors.Is(err, ErrEmbedding) {
		t.Errorf("429: err = %v", err)
	}
	bad, _ := NewOpenAIEmbedder(OpenAIEmbedderConfig{BaseURL: srv.URL + "/v1", Model: "emb-1", APIKey: "wrong"})
	if _, err := bad.Embed(context.Background(), []string{"a"}); !errors.Is(err, ErrEmbedding) {
		t.Errorf("401: err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Embed(ctx, []string{"a"}); err == nil {
		t.Error("cancelled context did not fail")
	}
}
