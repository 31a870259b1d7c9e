package kb

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// IndexConfig configures Build. The zero value is ready to use.
type IndexConfig struct {
	// Synonyms and Expansions extend the built-in normalisation tables
	// (see Normalizer); a tenant's rule wins over a built-in one. Nil: the
	// built-in tables only.
	Synonyms   map[string]string
	Expansions map[string]string
	// K1 and B are the BM25 parameters. Zero: 1.2 and 0.75, the usual values.
	K1, B float64
	// Embedder, if set, adds the optional embedding re-rank (see
	// SearchContext); BuildContext embeds every phrasing once. Nil: the
	// index is lexical only, which is the default.
	Embedder Embedder
	// EmbedWeight is the embeddings' share of the blended similarity.
	// Zero: 0.5.
	EmbedWeight float64
	// Logger receives one Debug line per build. Nil: no logging.
	Logger *slog.Logger
}

// Candidate is one search result.
type Candidate struct {
	EntryID  string
	Question string // the entry's standard question
	Matched  string // the question or similar question that matched best
	Answer   string
	Category string
	// Score is the raw retrieval score; only its order means something.
	Score float64
	// Confidence in [0, 1] says how sure the index is that this entry
	// answers the query; see Index.Search for how it is computed.
	Confidence float64
}

// Index is a tenant's in-memory retrieval index over its enabled entries.
// It is immutable once built and safe for any number of concurrent
// readers. To change it, Build a new one and swap it in with Live.Replace.
type Index struct {
	entries []Entry
	byID    map[string]int
	norm    *Normalizer
	k1, b   float64

	terms    map[string]int32
	termW    []float64 // kind weight × idf, per term
	termFull []bool    // a full-weight term: a content bigram or a word, not a unigram or function word
	oovIDF   float64   // IDF of a term the index has never seen
	postings [][]posting

	// Documents are the entries' phrasings: the question, each similar
	// question, and the tags with the category. Each belongs to one entry.
	docEntry []int32
	entryDoc []int32 // entry i's documents are entryDoc[i] to entryDoc[i+1]-1
	docKind  []docKind
	docText  []string  // the phrasing as written, for Candidate.Matched
	docLen   []float32 // weighted length
	docSelf  []float32 // the document's own total weight, for coverage
	avgLen   float64
	typical  float64 // see calibrate

	// sem holds phrasing embeddings for re-ranking (see SearchContext);
	// nil when no Embedder is configured.
	sem *semantic

	scratch sync.Pool // *searchScratch
}

type docKind uint8

const (
	kindQuestion docKind = iota
	kindSimilar
	kindTags
)

type posting struct {
	doc   int32
	tf    float32
	topic bool    // the term recurs in the entry: see offTopicFactor
	share float32 // share of the entry's phrasings that contain the term
}

type searchScratch struct {
	score        []float64 // BM25 per document
	matched      []float64 // matched term weight per document
	entryMatched []float64 // matched term weight per entry, over all its documents
	entryTerm    []int32   // per entry: 1 + the last term added to entryMatched
	entryTopic   []float64 // matched weight of full-weight terms that recur in the entry
	entryFull    []int32   // distinct full-weight terms matched in the entry
	entryShare   []float32 // the largest share of the entry's phrasings a matched full-weight term occurs in
	topicTerm    []int32   // per entry: 1 + the last term added to entryTopic
	touched      []int32
	best         []entryHit        // per entry: its best document so far (doc -1: none)
	entries      []int32           // entries with a best document
	seen         map[int32]float64 // query term -> query tf
	order        []int32           // the query's distinct terms in order
}

// Build indexes the enabled entries. Entries are validated; an invalid
// entry or a duplicate id fails the whole build, so a bad import never
// half-replaces a good index. The Entry values are copied; their Similar
// and Tags slices are shared and must not be modified afterwards.
//
// Build never calls cfg.Embedder; use BuildContext for that.
func Build(entries []Entry, cfg IndexConfig) (*Index, error) {
	cfg.Embedder = nil
	return BuildContext(context.Background(), entries, cfg)
}

// BuildContext is Build, and with cfg.Embedder set it also embeds every
// phrasing under ctx. If only the embedding fails, it returns a usable
// lexical index together with an error wrapping ErrEmbedding: the bot
// keeps answering while the caller logs the error or retries.
func BuildContext(ctx context.Context, entries []Entry, cfg IndexConfig) (*Index, error) {
	start := time.Now()
	if err := ValidateAll(entries); err != nil {
		return nil, err
	}
	x := &Index{
		byID:  make(map[string]int, len(entries)),
		norm:  NewNormalizer(cfg.Synonyms, cfg.Expansions),
		k1:    cfg.K1,
		b:     cfg.B,
		terms: make(map[string]int32, 1024),
	}
	if x.k1 == 0 {
		x.k1 = 1.2
	}
	if x.b == 0 {
		x.b = 0.75
	}
	var df []int32
	var kindW []float64
	var lastEntry []int32 // per term: the last entry counted in df
	var totalLen float64
	tf := map[int32]float32{}
	inEntry := map[int32]int32{} // term -> documents of the current entry containing it
	for _, e := range entries {
		if !e.Enabled {
			continue
		}
		ei := int32(len(x.entries))
		x.entryDoc = append(x.entryDoc, int32(len(x.docEntry)))
		x.byID[e.ID] = int(ei)
		x.entries = append(x.entries, e)
		texts := make([]string, 0, 2+len(e.Similar))
		kinds := make([]docKind, 0, 2+len(e.Similar))
		texts = append(texts, e.Question)
		kinds = append(kinds, kindQuestion)
		for _, sim := range e.Similar {
			texts = append(texts, sim)
			kinds = append(kinds, kindSimilar)
		}
		if len(e.Tags) > 0 || e.Category != "" {
			texts = append(texts, strings.Join(append(append([]string{}, e.Tags...), e.Category), " "))
			kinds = append(kinds, kindTags)
		}
		clear(inEntry)
		for ti, text := range texts {
			doc := int32(len(x.docEntry))
			clear(tf)
			var length float64
			tokenize(x.norm.Normalize(text), func(t token) {
				id, ok := x.terms[t.text]
				if !ok {
					id = int32(len(x.postings))
					x.terms[t.text] = id
					x.postings = append(x.postings, nil)
					df = append(df, 0)
					kindW = append(kindW, t.weight)
					lastEntry = append(lastEntry, -1)
				}
				tf[id]++
				length += t.weight
			})
			for id, n := range tf {
				inEntry[id]++
				x.postings[id] = append(x.postings[id], posting{doc: doc, tf: n})
				if lastEntry[id] != ei {
					lastEntry[id] = ei
					df[id]++
				}
			}
			x.docEntry = append(x.docEntry, ei)
			x.docKind = append(x.docKind, kinds[ti])
			x.docText = append(x.docText, text)
			x.docLen = append(x.docLen, float32(length))
			totalLen += length
		}
		// A term in two or more of the entry's phrasings is its theme.
		// An entry with a single phrasing has nothing to compare: all of
		// it counts.
		// Each document adds at most one posting per term, so the entry's
		// postings of a term are the last inEntry[id] of its list.
		for id, c := range inEntry {
			ps := x.postings[id]
			share := float32(c) / float32(len(texts))
			for i := len(ps) - int(c); i < len(ps); i++ {
				ps[i].topic = c >= 2 || len(texts) == 1
				ps[i].share = share
			}
		}
	}
	x.entryDoc = append(x.entryDoc, int32(len(x.docEntry)))
	n := float64(len(x.entries))
	x.termW = make([]float64, len(df))
	x.termFull = make([]bool, len(df))
	for id, d := range df {
		x.termW[id] = kindW[id] * idf(n, float64(d))
		x.termFull[id] = kindW[id] >= weightBigram
	}
	x.oovIDF = idf(n, 0)
	if len(x.docLen) > 0 {
		x.avgLen = totalLen / float64(len(x.docLen))
	}
	// Each document's own weight: what a query identical to it would match.
	x.docSelf = make([]float32, len(x.docLen))
	for id, ps := range x.postings {
		for _, p := range ps {
			x.docSelf[p.doc] += float32(x.termW[id])
		}
	}
	// Posting lists were grown by append: trim them so a 10,000-entry
	// index does not keep up to twice the memory it needs.
	for id, ps := range x.postings {
		x.postings[id] = ps[:len(ps):len(ps)]
	}
	x.scratch.New = func() any {
		best := make([]entryHit, len(x.entries))
		for i := range best {
			best[i].doc = -1
		}
		return &searchScratch{
			best:         best,
			score:        make([]float64, len(x.docEntry)),
			matched:      make([]float64, len(x.docEntry)),
			entryMatched: make([]float64, len(x.entries)),
			entryTerm:    make([]int32, len(x.entries)),
			entryTopic:   make([]float64, len(x.entries)),
			entryFull:    make([]int32, len(x.entries)),
			entryShare:   make([]float32, len(x.entries)),
			topicTerm:    make([]int32, len(x.entries)),
			seen:         map[int32]float64{},
		}
	}
	x.calibrate()
	var embedErr error
	if cfg.Embedder != nil {
		w := cfg.EmbedWeight
		if w <= 0 || w > 1 {
			w = 0.5
		}
		embedErr = x.embedDocs(ctx, cfg.Embedder, w)
	}
	if cfg.Logger != nil {
		cfg.Logger.Debug("kb: index built", "entries", len(x.entries), "documents", len(x.docEntry),
			"terms", len(x.terms), "typical", x.typical, "embeddings", x.sem != nil, "took", time.Since(start))
	}
	return x, embedErr
}

// idf is BM25's inverse document frequency, counted over entries, not
// phrasings: a term every phrasing of one entry shares is still specific to
// that entry.
func idf(n, df float64) float64 {
	return math.Log(1 + (n-df+0.5)/(df+0.5))
}

// Len returns the number of indexed (enabled) entries.
func (x *Index) Len() int {
	if x == nil {
		return 0
	}
	return len(x.entries)
}

// Entry returns the indexed entry with the given id.
func (x *Index) Entry(id string) (Entry, bool) {
	if x == nil {
		return Entry{}, false
	}
	i, ok := x.byID[id]
	if !ok {
		return Entry{}, false
	}
	return x.entries[i], true
}

// Entries returns the indexed entries in import order. The slice is a copy;
// the entries share their Similar and Tags slices with the index, which
// callers must not modify.
func (x *Index) Entries() []Entry {
	if x == nil {
		return nil
	}
	return append([]Entry(nil), x.entries...)
}

// Semantic reports whether the index re-ranks with embeddings.
func (x *Index) Semantic() bool { return x != nil && x.sem != nil }

// Normalizer returns the normalizer the index was built with.
func (x *Index) Normalizer() *Normalizer { return x.norm }

// String describes the index for logs.
func (x *Index) String() string {
	if x == nil {
		return "kb.Index(nil)"
	}
	return fmt.Sprintf("kb.Index(%d entries, %d phrasings, %d terms)", len(x.entries), len(x.docEntry), len(x.terms))
}

// entryHit is the best document of one entry for a query.
type entryHit struct {
	entry int32
	doc   int32
	score float64 // BM25 of the best document
	qcov  float64 // share of the query's weight the document matched
	dcov  float64 // share of the document's weight the query matched
	dice  float64 // harmonic mean of qcov and dcov
	ecov  float64 // share of the query's weight any document of the entry matched
	sim   float64 // the ranking similarity
	topic bool    // a full-weight term that recurs in the entry matched
	full  int     // distinct full-weight terms matched
	theme float64 // the largest share of the entry's phrasings one matched full-weight term occurs in
}

// Search returns up to k candidates, best first. It never returns a
// candidate with a zero score.
//
// Ranking: the query is normalized and tokenized like the entries. Each
// phrasing of an entry (question, similar questions, tags) is scored with
// BM25, and an entry takes the score of its best phrasing.
//
// Confidence is computed from two things the retrieval itself measures,
// not fitted to any labelled set:
//
//   - coverage: the IDF-weighted share of the query's terms the best
//     phrasing contains, combined with the share of the phrasing's terms
//     the query contains (their harmonic mean, a weighted Dice
//     coefficient). Normalising by the query's own weight (its self-match)
//     makes scores comparable across queries: a query that only shares
//     "怎么" with an entry covers little of itself, however high BM25 ranks
//     the entry.
//   - margin: how far the candidate is ahead of the next different entry,
//     relative to its own similarity. Two entries matching equally well is
//     ambiguity, and the bot should ask rather than guess.
//
// confidence = min(1, similarity / typical) × (0.5 + 0.5 × margin).
// "typical" is calibrated on the knowledge base itself when the index is
// built: each similar question (up to calibrationSamples of them) is held
// out and searched for, and typical is the median similarity such a
// held-out paraphrase reaches to its own entry. A query as close to an
// entry as a typical paraphrase of it, and clearly ahead of every other
// entry, is certain; half as close is half as sure. No labelled query set
// is involved, and each tenant's index is calibrated on its own entries.
// The runner-up's margin is measured against the entry after it.
func (x *Index) Search(query string, k int) []Candidate {
	return x.candidates(x.search(query, k+1), k) // one more for the last one's margin
}

// candidates turns the first k ranked hits into candidates.
func (x *Index) candidates(hits []entryHit, k int) []Candidate {
	if len(hits) == 0 || k <= 0 {
		return nil
	}
	out := make([]Candidate, 0, min(k, len(hits)))
	for i := 0; i < len(hits) && i < k; i++ {
		h := hits[i]
		next := 0.0
		if i+1 < len(hits) {
			next = hits[i+1].sim
		}
		e := &x.entries[h.entry]
		out = append(out, Candidate{
			EntryID:    e.ID,
			Question:   e.Question,
			Matched:    x.docText[h.doc],
			Answer:     e.Answer,
			Category:   e.Category,
			Score:      h.score,
			Confidence: x.confidence(h, next),
		})
	}
	return out
}

func (x *Index) confidence(h entryHit, nextSim float64) float64 {
	if h.sim <= 0 {
		return 0
	}
	cov := math.Min(1, h.sim/x.typical)
	margin := math.Max(0, (h.sim-nextSim)/h.sim)
	return cov * (0.5 + 0.5*margin) * x.evidence(h)
}

// evidence is the product of the factors below that apply to h.
func (x *Index) evidence(h entryHit) float64 {
	f := 1.0
	if !h.topic {
		f *= offTopicFactor
	}
	if h.full < 2 && h.theme < 0.5 {
		f *= thinFactor
	}
	return f
}

// offTopicFactor scales the confidence of an entry when no content word
// the query matched recurs in the entry (appears in at least two of its
// phrasings: question, similar questions, tags). What recurs is what the
// entry is about; a word in one paraphrase is how one user happened to
// ask. A query touching only such words is a weak match however large a
// share of a short query it covers ("你喜欢吃什么" and "不喜欢能退吗" share
// 喜欢 and nothing about returns). An entry with a single phrasing counts
// all its words as recurring.
const offTopicFactor = 0.5

// thinFactor scales the confidence of an entry matched by a single content
// word that is not its theme (a word in at least half of its phrasings).
// One word is enough evidence when it is what the entry is about (定金,
// 积分); one incidental word is not (推荐 in 尺码推荐, 喜欢 in 不喜欢能退吗).
const thinFactor = 0.5

// Calibration bounds. With fewer than minCalibration similar questions the
// median is noise, and defaultTypical (the median measured on the demo
// knowledge base, a typical shop FAQ) is used; the result is clamped so a
// knowledge base of near-duplicate phrasings cannot make every match look
// weak, nor one of unrelated phrasings make weak matches look certain.
const (
	calibrationSamples = 128
	minCalibration     = 8
	defaultTypical     = 0.43
	minTypical         = 0.25
	maxTypical         = 0.65
)

// calibrate sets x.typical from held-out similar questions.
func (x *Index) calibrate() {
	var held []int32
	for d := range x.docEntry {
		if x.docKind[d] == kindSimilar {
			held = append(held, int32(d))
		}
	}
	x.typical = defaultTypical
	if len(held) < minCalibration {
		return
	}
	// An even spread over the entries, deterministic so that the same
	// entries always build the same index.
	step := max(1, len(held)/calibrationSamples)
	var sims []float64
	for i := 0; i < len(held); i += step {
		d := held[i]
		own := x.docEntry[d]
		sim := 0.0
		for _, h := range x.match(x.docText[d], d) {
			if h.entry == own {
				sim = h.sim
				break
			}
		}
		sims = append(sims, sim)
	}
	sort.Float64s(sims)
	x.typical = min(maxTypical, max(minTypical, sims[len(sims)/2]))
}

// Typical returns the similarity a held-out paraphrase typically reaches
// to its own entry in this index: the scale of Confidence.
func (x *Index) Typical() float64 { return x.typical }

// search returns the n best entries for the query, best first.
func (x *Index) search(query string, n int) []entryHit {
	return best(x.match(query, -1), n)
}

// best returns the n best hits, best first, without sorting them all: a
// large knowledge base matches thousands of entries by single characters.
func best(hits []entryHit, n int) []entryHit {
	if n <= 0 {
		return nil
	}
	if len(hits) <= 4*n {
		slices.SortFunc(hits, compareHits)
		return hits[:min(n, len(hits))]
	}
	top := make([]entryHit, 0, n+1)
	for _, h := range hits {
		if len(top) == n && compareHits(h, top[n-1]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(top, h, compareHits)
		top = slices.Insert(top, i, h)
		if len(top) > n {
			top = top[:n]
		}
	}
	return top
}

// compareHits orders by similarity, then BM25, then entry order, so that
// rankings are deterministic.
func compareHits(a, b entryHit) int {
	switch {
	case a.sim != b.sim:
		return cmp.Compare(b.sim, a.sim)
	case a.score != b.score:
		return cmp.Compare(b.score, a.score)
	}
	return cmp.Compare(a.entry, b.entry)
}

// match scores the entries the query touches, in no particular order, as
// if document skip did not exist (-1: none; calibration holds a phrasing
// out).
func (x *Index) match(query string, skip int32) []entryHit {
	if x == nil || len(x.entries) == 0 {
		return nil
	}
	s := x.scratch.Get().(*searchScratch)
	defer x.scratch.Put(s)
	clear(s.seen)
	s.touched, s.order = s.touched[:0], s.order[:0]

	// The query's distinct known terms, and its own total weight: the
	// weight a document identical to the query would match. Terms the
	// index has never seen count at the highest IDF: they are information
	// the knowledge base does not have.
	var qself float64
	tokenize(x.norm.Normalize(query), func(t token) {
		id, ok := x.terms[t.text]
		if !ok {
			qself += t.weight * x.oovIDF * oovFactor
			return
		}
		if _, dup := s.seen[id]; !dup {
			qself += x.termW[id]
			s.order = append(s.order, id)
		}
		s.seen[id]++
	})
	if qself == 0 {
		return nil
	}
	k1, b := x.k1, x.b
	// In query order, not map order: float sums must not depend on it.
	for _, id := range s.order {
		w := x.termW[id]
		for _, p := range x.postings[id] {
			d := p.doc
			if d == skip {
				continue
			}
			if s.matched[d] == 0 {
				s.touched = append(s.touched, d)
			}
			tf := float64(p.tf)
			norm := k1 * (1 - b + b*float64(x.docLen[d])/x.avgLen)
			s.score[d] += w * tf * (k1 + 1) / (tf + norm)
			s.matched[d] += w
			e := x.docEntry[d]
			if s.entryTerm[e] != id+1 {
				s.entryTerm[e] = id + 1
				s.entryMatched[e] += w
			}
			if x.termFull[id] && s.topicTerm[e] != id+1 {
				s.topicTerm[e] = id + 1
				s.entryFull[e]++
				if p.topic {
					s.entryTopic[e] += w
				}
				s.entryShare[e] = max(s.entryShare[e], p.share)
			}
		}
	}
	// Best document per entry.
	s.entries = s.entries[:0]
	for _, d := range s.touched {
		e := x.docEntry[d]
		qcov := s.matched[d] / qself
		dcov := s.matched[d] / float64(x.docSelf[d])
		dice := 0.0
		if qcov+dcov > 0 {
			dice = 2 * qcov * dcov / (qcov + dcov)
		}
		h := entryHit{entry: e, doc: d, score: s.score[d], qcov: qcov, dcov: dcov, dice: dice}
		switch cur := s.best[e]; {
		case cur.doc < 0:
			s.entries = append(s.entries, e)
			s.best[e] = h
		case h.dice > cur.dice || (h.dice == cur.dice && h.score > cur.score):
			s.best[e] = h
		}
		s.score[d], s.matched[d] = 0, 0
	}
	hits := make([]entryHit, 0, len(s.entries))
	for _, e := range s.entries {
		h := s.best[e]
		h.ecov = s.entryMatched[e] / qself
		h.topic = s.entryTopic[e] > 0
		h.full = int(s.entryFull[e])
		h.theme = float64(s.entryShare[e])
		h.sim = diceWeight*h.dice + (1-diceWeight)*h.ecov
		hits = append(hits, h)
		s.best[e] = entryHit{doc: -1}
		s.entryMatched[e], s.entryTerm[e], s.entryTopic[e], s.topicTerm[e], s.entryFull[e], s.entryShare[e] = 0, 0, 0, 0, 0, 0
	}
	return hits
}

// Ranking constants. They are properties of Chinese text and of the
// measure, not of any particular knowledge base or labelled set.
const (
	// diceWeight balances the best single phrasing (weighted Dice) against
	// the entry as a whole (query coverage over all its phrasings): the
	// first rewards a close paraphrase, the second a query whose parts are
	// spread over an entry's phrasings and tags.
	diceWeight = 0.5
	// oovFactor discounts query bigrams the index has never seen. About
	// half the bigrams of a sentence cross a word boundary (most Chinese
	// words have two characters), so about half the unseen ones are junk
	// rather than missing information.
	oovFactor = 0.5
)

// Live holds the current index of one tenant. Readers Load it without
// locking; a writer builds a new index off to the side and Replaces it, so
// readers never see a half-built index and no restart is needed when
// entries change. A Live is safe for concurrent use; its zero value holds
// no index (Load returns nil, and a nil *Index searches as empty).
type Live struct {
	p atomic.Pointer[Index]
}

// NewLive returns a holder of idx.
func NewLive(idx *Index) *Live {
	l := &Live{}
	l.p.Store(idx)
	return l
}

// Load returns the current index (nil if none was ever stored).
func (l *Live) Load() *Index { return l.p.Load() }

// Replace makes idx current and returns the index it replaced.
func (l *Live) Replace(idx *Index) *Index { return l.p.Swap(idx) }
