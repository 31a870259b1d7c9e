package kb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// Embedder turns texts into vectors whose cosine similarity reflects
// meaning. It is optional: without one the index is lexical only.
type Embedder interface {
	// Embed returns one vector per text, in order. All vectors have the
	// same length.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// ErrEmbedding: the embedder failed or returned vectors of the wrong shape.
var ErrEmbedding = errors.New("kb: embedding failed")

// OpenAIEmbedderConfig configures an embedder that calls any
// OpenAI-compatible /embeddings endpoint.
type OpenAIEmbedderConfig struct {
	BaseURL string // e.g. "https://api.openai.com/v1"; required
	Model   string // e.g. "text-embedding-3-small", "bge-m3"; required
	APIKey  string // empty: no key (local servers)
	// BatchSize bounds the texts per request. Zero: 128.
	BatchSize int
	// Dimensions asks models that support it for shorter vectors. Zero:
	// the model's default.
	Dimensions int
	// HTTPClient makes the requests. Nil: a client without its own timeout
	// (the caller's context bounds each call).
	HTTPClient *http.Client
}

// OpenAIEmbedder is an Embedder backed by go-openai's CreateEmbeddings. It
// is safe for concurrent use.
type OpenAIEmbedder struct {
	cfg    OpenAIEmbedderConfig
	client *openai.Client
}

// NewOpenAIEmbedder returns an embedder for cfg.
func NewOpenAIEmbedder(cfg OpenAIEmbedderConfig) (*OpenAIEmbedder, error) {
	if cfg.BaseURL == "" || cfg.Model == "" {
		return nil, fmt.Errorf("%w: base URL and model are required", ErrEmbedding)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 128
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.HTTPClient != nil {
		oc.HTTPClient = cfg.HTTPClient
	} else {
		oc.HTTPClient = &http.Client{}
	}
	return &OpenAIEmbedder{cfg: cfg, client: openai.NewClientWithConfig(oc)}, nil
}

// Embed implements Embedder, in batches of BatchSize.
func (e *OpenAIEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += e.cfg.BatchSize {
		batch := texts[start:min(len(texts), start+e.cfg.BatchSize)]
		resp, err := e.client.CreateEmbeddings(ctx, openai.EmbeddingRequest{
			Input: batch, Model: openai.EmbeddingModel(e.cfg.Model), Dimensions: e.cfg.Dimensions,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrEmbedding, err)
		}
		if len(resp.Data) != len(batch) {
			return nil, fmt.Errorf("%w: %d vectors for %d texts", ErrEmbedding, len(resp.Data), len(batch))
		}
		vecs := make([][]float32, len(batch))
		for _, d := range resp.Data {
			if d.Index < 0 || d.Index >= len(batch) || vecs[d.Index] != nil {
				return nil, fmt.Errorf("%w: bad or repeated index %d", ErrEmbedding, d.Index)
			}
			vecs[d.Index] = d.Embedding
		}
		out = append(out, vecs...)
	}
	return out, nil
}

// semantic holds unit vectors of an index's phrasings and the cosine scale
// measured on them.
type semantic struct {
	embedder Embedder
	weight   float64
	vecs     [][]float32 // per document, unit length
	// cosTypical is the median cosine of a similar question to the
	// closest other phrasing of its own entry; cosBackground the median
	// cosine between phrasings of different entries. Together they map a
	// model's cosine onto [0, 1] without assuming a model.
	cosTypical, cosBackground float64
}

// embedDocs embeds every phrasing and measures the cosine scale.
func (x *Index) embedDocs(ctx context.Context, e Embedder, weight float64) error {
	if len(x.docText) == 0 {
		return nil
	}
	vecs, err := e.Embed(ctx, x.docText)
	if err != nil {
		return err
	}
	if len(vecs) != len(x.docText) {
		return fmt.Errorf("%w: %d vectors for %d phrasings", ErrEmbedding, len(vecs), len(x.docText))
	}
	dim := len(vecs[0])
	for i, v := range vecs {
		if len(v) != dim || dim == 0 {
			return fmt.Errorf("%w: vector %d has length %d, want %d", ErrEmbedding, i, len(v), dim)
		}
		vecs[i] = unit(v)
	}
	s := &semantic{embedder: e, weight: weight, vecs: vecs}
	var own, other []float64
	n := len(vecs)
	for d := 0; d < n; d++ {
		if x.docKind[d] == kindSimilar {
			best := -1.0
			e := x.docEntry[d]
			for o := x.entryDoc[e]; o < x.entryDoc[e+1]; o++ {
				if int(o) != d {
					best = max(best, dot(vecs[d], vecs[o]))
				}
			}
			if best > -1 {
				own = append(own, best)
			}
		}
		if o := (d + n/2) % n; x.docEntry[o] != x.docEntry[d] {
			other = append(other, dot(vecs[d], vecs[o]))
		}
		if len(own) >= calibrationSamples && len(other) >= calibrationSamples {
			break
		}
	}
	s.cosTypical, s.cosBackground = median(own, 0.8), median(other, 0.2)
	if s.cosTypical-s.cosBackground < 0.05 {
		// The model does not separate paraphrases from strangers on
		// this knowledge base; its scores would be noise.
		return fmt.Errorf("%w: the model does not separate this knowledge base's paraphrases (typical %.2f, background %.2f)",
			ErrEmbedding, s.cosTypical, s.cosBackground)
	}
	x.sem = s
	return nil
}

func median(v []float64, def float64) float64 {
	if len(v) == 0 {
		return def
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func unit(v []float32) []float32 {
	var s float64
	for _, f := range v {
		s += float64(f) * float64(f)
	}
	if s == 0 {
		return v
	}
	inv := float32(1 / math.Sqrt(s))
	out := make([]float32, len(v))
	for i, f := range v {
		out[i] = f * inv
	}
	return out
}

func dot(a, b []float32) float64 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return float64(s)
}

// rerankPool is how many lexical candidates the embeddings re-rank.
const rerankPool = 20

// SearchContext is Search with the optional embedding re-rank: when the
// index was built with an Embedder, the query is embedded (one call,
// bounded by ctx) and the best lexical candidates are re-ranked by a blend
// of lexical similarity and the cosine to the entry's closest phrasing,
// mapped onto the lexical scale by the cosine scale measured at build
// time. If embedding the query fails, the lexical ranking is returned
// together with the error, so a caller can log it and carry on.
func (x *Index) SearchContext(ctx context.Context, query string, k int) ([]Candidate, error) {
	if x == nil || x.sem == nil {
		return x.Search(query, k), nil
	}
	if k <= 0 {
		return nil, nil
	}
	hits := x.search(query, max(k, rerankPool)+1)
	if len(hits) == 0 {
		return nil, nil
	}
	pool := hits
	qv, err := x.sem.embedder.Embed(ctx, []string{query})
	if err == nil && (len(qv) != 1 || len(qv[0]) != len(x.sem.vecs[0])) {
		err = fmt.Errorf("%w: query vector has the wrong shape", ErrEmbedding)
	}
	if err != nil {
		return x.candidates(hits, k), err
	}
	q := unit(qv[0])
	s := x.sem
	for i := range pool {
		h := &pool[i]
		best := -1.0
		for d := x.entryDoc[h.entry]; d < x.entryDoc[h.entry+1]; d++ {
			best = max(best, dot(q, s.vecs[d]))
		}
		sem := min(1, max(0, (best-s.cosBackground)/(s.cosTypical-s.cosBackground))) * x.typical
		// The lexical evidence factors judge lexical evidence only; a
		// paraphrase the model recognises needs no shared word.
		h.sim = (1-s.weight)*h.sim*x.evidence(*h) + s.weight*sem
		h.topic, h.full, h.theme = true, 2, 1
	}
	slices.SortStableFunc(pool, compareHits)
	return x.candidates(pool, k), nil
}
