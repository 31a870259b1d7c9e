package bots

import (
	"context"
	"strconv"
	"strings"

	"github.com/kefu-dev/kefu/kb"
)

// Default FAQ thresholds, on kb's confidence scale (1 = as close as a
// typical held-out paraphrase of the entry and clearly ahead of the others;
// see kb.Index.Search). The scale is calibrated on each knowledge base
// itself; the two numbers are not. DefaultHigh was chosen on the demo
// knowledge base's dev set as the middle of the range (0.26-0.31) where
// its targets hold, so a held-out set decides how well it generalises;
// tenants can move it. Raising it trades answers for fewer false answers.
const (
	DefaultHigh   = 0.28
	DefaultMedium = 0.15
)

// FAQ is the retrieval stage: it answers, suggests or gives up according to
// the best candidate's confidence. The zero value uses the defaults.
type FAQ struct {
	// High: a candidate at or above it is answered with its entry's
	// answer. Zero: DefaultHigh.
	High float64
	// Medium: at or above it (and below High) the bot offers "did you
	// mean" suggestions. Zero: DefaultMedium.
	Medium float64
	// MaxSuggestions bounds the did-you-mean list. Zero: 3.
	MaxSuggestions int
	// K is how many candidates to retrieve (for suggestions and the LLM's
	// context). Zero: 5.
	K int
}

func (f *FAQ) high() float64 {
	if f == nil || f.High <= 0 {
		return DefaultHigh
	}
	return f.High
}

func (f *FAQ) medium() float64 {
	if f == nil || f.Medium <= 0 {
		return DefaultMedium
	}
	return f.Medium
}

func (f *FAQ) maxSuggestions() int {
	if f == nil || f.MaxSuggestions <= 0 {
		return 3
	}
	return f.MaxSuggestions
}

func (f *FAQ) k() int {
	if f == nil || f.K <= 0 {
		return 5
	}
	return max(f.K, f.maxSuggestions())
}

// Retrieve searches the index for the stage's K candidates, re-ranked by
// embeddings when the index has them. On an embedding error it returns
// the lexical candidates and the error.
func (f *FAQ) Retrieve(ctx context.Context, idx *kb.Index, text string) ([]kb.Candidate, error) {
	return idx.SearchContext(ctx, text, f.k())
}

// Decide turns candidates (best first) into a reply: KindAnswer at High
// confidence, KindSuggest at Medium, KindFallback below (Reason
// ReasonLowConfidence, which the LLM stage may still answer).
func (f *FAQ) Decide(cands []kb.Candidate, texts Texts) Reply {
	texts = texts.withDefaults()
	if len(cands) == 0 {
		return Reply{Kind: KindFallback, Text: texts.Fallback, Reason: ReasonLowConfidence, Stage: StageFAQ}
	}
	top := cands[0]
	switch {
	case top.Confidence >= f.high():
		return Reply{
			Kind: KindAnswer, Text: top.Answer, EntryID: top.EntryID, Confidence: top.Confidence,
			Reason: ReasonHighConfidence, Stage: StageFAQ, UsedEntries: []string{top.EntryID}, Candidates: cands,
		}
	case top.Confidence >= f.medium():
		// The runners-up are offered when they are at least half as
		// likely as the medium bar: close alternatives, not noise.
		var sugg []Suggestion
		for _, c := range cands {
			if len(sugg) == f.maxSuggestions() {
				break
			}
			if len(sugg) > 0 && c.Confidence < f.medium()/2 {
				break
			}
			sugg = append(sugg, Suggestion{EntryID: c.EntryID, Question: c.Question})
		}
		var b strings.Builder
		b.WriteString(texts.SuggestIntro)
		for i, s := range sugg {
			b.WriteString("\n")
			b.WriteString(strconv.Itoa(i + 1))
			b.WriteString(". ")
			b.WriteString(s.Question)
		}
		return Reply{
			Kind: KindSuggest, Text: b.String(), Suggestions: sugg, Confidence: top.Confidence,
			Reason: ReasonMediumConfidence, Stage: StageFAQ, Candidates: cands,
		}
	default:
		return Reply{
			Kind: KindFallback, Text: texts.Fallback, Confidence: top.Confidence,
			Reason: ReasonLowConfidence, Stage: StageFAQ, Candidates: cands,
		}
	}
}
