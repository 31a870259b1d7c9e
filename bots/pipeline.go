package bots

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/kefu-dev/kefu/kb"
)

// Config assembles a Pipeline. The zero value is a FAQ-only bot with the
// default thresholds and texts.
type Config struct {
	Rules Rules
	FAQ   FAQ
	// LLM answers low-confidence questions from the retrieved entries.
	// Nil: FAQ-only (low confidence gets the honest fallback).
	LLM *LLM
	// MaxFailedTurns escalates when this many consecutive turns, the
	// current one included, end without an answer. Zero: 3. Negative:
	// never escalate for this reason.
	MaxFailedTurns int
	// Texts overrides the user-facing texts field by field.
	Texts Texts
	// Logger receives one Debug line per reply and warnings about failed
	// LLM and classifier calls. Nil: slog.Default().
	Logger *slog.Logger
}

// Pipeline is the bot: rules → FAQ retrieval → LLM → escalation decision.
// It holds no per-conversation state (the caller passes FailedTurns in
// each Turn) and is safe for concurrent use.
type Pipeline struct {
	rules  Rules
	faq    FAQ
	llm    *LLM
	decide Decide
	texts  Texts
	log    *slog.Logger
}

// New returns a pipeline for cfg.
func New(cfg Config) *Pipeline {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Pipeline{
		rules:  cfg.Rules,
		faq:    cfg.FAQ,
		llm:    cfg.LLM,
		decide: Decide{MaxFailedTurns: cfg.MaxFailedTurns},
		texts:  cfg.Texts.withDefaults(),
		log:    log,
	}
}

// Respond decides the bot's reply to one turn, using idx (the tenant's
// current index; nil counts as empty). It never returns an empty Text.
//
// With an LLM configured, a low-confidence question goes to it; onDelta,
// if set, receives the answer's pieces as they stream in. The returned
// Reply is authoritative: if the LLM fails midway, pieces already passed
// to onDelta are void and the Reply carries the fallback. onDelta is not
// called for replies that do not come from the LLM. Cancelling ctx cancels
// an in-flight LLM call; Respond then still returns a fallback reply.
func (p *Pipeline) Respond(ctx context.Context, idx *kb.Index, t Turn, onDelta func(string)) Reply {
	r := p.respond(ctx, idx, t, onDelta)
	r = p.decide.Apply(t, r, p.texts)
	p.log.Debug("bots: reply", "tenant", t.Tenant, "kind", r.Kind, "reason", r.Reason, "stage", r.Stage,
		"entry", r.EntryID, "confidence", r.Confidence, "failed_turns", t.FailedTurns)
	return r
}

func (p *Pipeline) respond(ctx context.Context, idx *kb.Index, t Turn, onDelta func(string)) Reply {
	text := strings.TrimSpace(t.Text)
	if text == "" {
		return Reply{Kind: KindFallback, Text: p.texts.Empty, Reason: ReasonEmpty, Stage: StageRules}
	}
	// 1. Rules: a person was asked for, or the user is angry.
	v := p.rules.Check(text)
	if esc, why := p.rules.Escalates(v); esc {
		return p.escalation(why, StageRules)
	}
	// 2. Retrieval and the FAQ decision.
	cands, err := p.faq.Retrieve(ctx, idx, text)
	if err != nil {
		p.log.Warn("bots: embedding re-rank failed; using the lexical ranking", "tenant", t.Tenant, "err", err)
	}
	r := p.faq.Decide(cands, p.texts)
	if v.Lookup {
		// The user wants their own order or case looked up: an FAQ about
		// the topic would not answer that, and neither would the LLM.
		r = Reply{Kind: KindFallback, Text: p.texts.NeedsLookup, Reason: ReasonNeedsLookup, Stage: StageRules,
			Confidence: r.Confidence, Candidates: cands}
	}
	// 3. The classifier's second opinion, only where the lexicon saw some
	// heat or the bot has no answer: a confident answer to a calm question
	// is not worth a model call.
	if c := p.rules.Classifier; c != nil && (v.Anger > 0 || !r.Answered()) {
		in, err := c.Classify(ctx, text)
		switch {
		case err != nil:
			p.log.Warn("bots: classifier failed; using the lexicon's verdict", "tenant", t.Tenant, "err", err)
		case in.Human:
			return p.escalation(ReasonClassifier, StageRules)
		case in.Anger >= min(1, p.rules.angerThreshold()):
			return p.escalation(ReasonClassifier, StageRules)
		}
	}
	// 4. The LLM, for questions retrieval could not place.
	if p.llm != nil && r.Reason == ReasonLowConfidence && len(cands) > 0 {
		r = p.answerLLM(ctx, t, text, cands, r, onDelta)
	}
	return r
}

// answerLLM asks the LLM and falls back to the FAQ-only reply on refusal,
// error or timeout: the user always gets an answer or an honest fallback,
// never silence.
func (p *Pipeline) answerLLM(ctx context.Context, t Turn, text string, cands []kb.Candidate, faqOnly Reply, onDelta func(string)) Reply {
	ans, err := p.llm.Answer(ctx, text, cands, onDelta)
	switch {
	case err != nil:
		level := slog.LevelWarn
		if errors.Is(ctx.Err(), context.Canceled) {
			level = slog.LevelDebug // the caller gave up (a person took over): nothing failed
		}
		p.log.Log(ctx, level, "bots: LLM failed; falling back to the FAQ-only reply", "tenant", t.Tenant, "err", err)
		faqOnly.Reason = ReasonLLMError
		faqOnly.Stage = StageLLM
		return faqOnly
	case ans.Declined:
		faqOnly.Reason = ReasonLLMDeclined
		faqOnly.Stage = StageLLM
		return faqOnly
	}
	return Reply{
		Kind: KindAnswer, Text: ans.Text, EntryID: ans.Used[0], UsedEntries: ans.Used,
		Confidence: faqOnly.Confidence, Reason: ReasonLLMAnswer, Stage: StageLLM, Candidates: cands,
	}
}

func (p *Pipeline) escalation(reason, stage string) Reply {
	text := p.texts.Escalate
	switch reason {
	case ReasonAnger:
		text = p.texts.EscalateAnger
	case ReasonFailedTurns:
		text = p.texts.EscalateFailed
	}
	return Reply{Kind: KindEscalate, Text: text, Reason: reason, Stage: stage}
}

// Decide is the last stage: it escalates a conversation that has gone
// MaxFailedTurns turns without an answer. (Explicit requests and anger are
// escalated by the rules stage before retrieval.)
type Decide struct {
	// MaxFailedTurns: see Config.MaxFailedTurns.
	MaxFailedTurns int
}

func (d Decide) limit() int {
	if d.MaxFailedTurns == 0 {
		return 3
	}
	return d.MaxFailedTurns
}

// Apply returns r, or an escalation if r does not answer and this turn is
// the limit-th consecutive one without an answer.
func (d Decide) Apply(t Turn, r Reply, texts Texts) Reply {
	n := d.limit()
	if r.Kind == KindEscalate || r.Answered() || n < 0 || t.FailedTurns+1 < n {
		return r
	}
	texts = texts.withDefaults()
	return Reply{Kind: KindEscalate, Text: texts.EscalateFailed, Reason: ReasonFailedTurns, Stage: StageDecide,
		Confidence: r.Confidence, Candidates: r.Candidates}
}

// Assist returns the best knowledge-base answers for a conversation's
// latest user message, for the agent's side panel. Unlike the bot it
// shows weak matches too (an agent judges them); k <= 0 means 3.
func Assist(idx *kb.Index, text string, k int) []kb.Candidate {
	if k <= 0 {
		k = 3
	}
	return idx.Search(text, k)
}
