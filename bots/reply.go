package bots

import "github.com/kefu-dev/kefu/kb"

// Turn is one user message to respond to.
type Turn struct {
	Tenant string // for logs; the caller passes the tenant's own index
	Text   string
	// FailedTurns counts the consecutive turns before this one that ended
	// without an accepted answer (see Reply.Answered). The caller keeps
	// the count: +1 after a reply that did not answer, 0 after one that
	// did or when the user accepted a suggestion.
	FailedTurns int
}

// ReplyKind is what the bot does with a turn.
type ReplyKind string

// Reply kinds.
const (
	// KindAnswer answers from the knowledge base (Stage "faq") or from the
	// LLM grounded in it (Stage "llm").
	KindAnswer ReplyKind = "answer"
	// KindSuggest asks "did you mean" with up to three entries to tap.
	KindSuggest ReplyKind = "suggest"
	// KindFallback says the bot cannot answer and offers a person.
	KindFallback ReplyKind = "fallback"
	// KindEscalate hands the conversation to a person: the caller moves it
	// to QUEUED.
	KindEscalate ReplyKind = "escalate"
)

// Suggestion is one "did you mean" choice.
type Suggestion struct {
	EntryID  string `json:"entry_id"`
	Question string `json:"question"`
}

// Reply is the bot's decision for a turn. Text is never empty.
type Reply struct {
	Kind        ReplyKind    `json:"kind"`
	Text        string       `json:"text"`
	EntryID     string       `json:"entry_id,omitempty"` // the answering entry (KindAnswer from the FAQ; the first used entry from the LLM)
	Suggestions []Suggestion `json:"suggestions,omitempty"`
	Confidence  float64      `json:"confidence"` // the retrieval confidence of the best candidate
	Reason      string       `json:"reason"`     // one of the Reason constants
	UsedEntries []string     `json:"used_entries,omitempty"`
	Stage       string       `json:"stage"` // the stage that decided: rules, faq, llm or decide
	// Candidates are the retrieval results the decision was based on, for
	// logs, evaluation and agent assist. Not for the user.
	Candidates []kb.Candidate `json:"-"`
}

// Answered reports whether the reply answered the question, which resets
// the caller's count of failed turns.
func (r Reply) Answered() bool { return r.Kind == KindAnswer }

// Reasons.
const (
	ReasonEmpty            = "empty"             // nothing to answer
	ReasonHumanRequest     = "human_request"     // the user asked for a person
	ReasonAnger            = "anger"             // anger or complaint
	ReasonClassifier       = "classifier"        // the classifier judged the user wants a person or is angry
	ReasonNeedsLookup      = "needs_lookup"      // a question about the user's own records
	ReasonHighConfidence   = "high_confidence"   // a knowledge-base answer
	ReasonMediumConfidence = "medium_confidence" // did-you-mean suggestions
	ReasonLowConfidence    = "low_confidence"    // nothing close enough
	ReasonLLMAnswer        = "llm_answer"        // the LLM answered from retrieved entries
	ReasonLLMDeclined      = "llm_declined"      // the LLM found no answer in the entries, or the question is off-topic
	ReasonLLMError         = "llm_error"         // the LLM failed or timed out; FAQ-only fallback
	ReasonFailedTurns      = "failed_turns"      // too many turns without an answer
	// ReasonUserRequest is not the bot's: the customer pressed "talk to a
	// person" (the escalate frame). Summaries name it.
	ReasonUserRequest = "user_request"
)

// Stages.
const (
	StageRules  = "rules"
	StageFAQ    = "faq"
	StageLLM    = "llm"
	StageDecide = "decide"
)

// Texts are the user-facing texts. Zero fields take the defaults below.
type Texts struct {
	Fallback       string // low confidence, nothing to offer
	NeedsLookup    string // the user asks about their own order or case
	SuggestIntro   string // heads the did-you-mean list
	Escalate       string // the user asked for a person
	EscalateAnger  string // the user is angry or complaining
	EscalateFailed string // several turns without an answer
	Empty          string // the message had no text
	// Handover are the words of the summary the agent who takes over
	// reads (Pipeline.Summary).
	Handover HandoverTexts
}

// DefaultTexts are the built-in Chinese texts.
var DefaultTexts = Texts{
	Fallback:       "这个问题我暂时回答不了，抱歉。需要为您转接人工客服吗？回复“人工”即可转接。",
	NeedsLookup:    "查询您的订单或售后进度需要人工客服为您核实，需要为您转接人工客服吗？回复“人工”即可转接。",
	SuggestIntro:   "您是不是想问：",
	Escalate:       "好的，正在为您转接人工客服，请稍候。",
	EscalateAnger:  "非常抱歉给您带来不好的体验，正在为您转接人工客服，请稍候。",
	EscalateFailed: "抱歉没能帮到您，正在为您转接人工客服，请稍候。",
	Empty:          "您好，请问有什么可以帮您？",
	Handover: HandoverTexts{
		ReasonLabel:    "转人工原因",
		TurnsLabel:     "机器人已接待",
		TurnsUnit:      "轮",
		QuestionsLabel: "客户最近的问题",
		NoQuestions:    "（无）",
		HumanRequest:   "客户要求转人工",
		Anger:          "客户情绪不满",
		Classifier:     "客户需要人工协助（模型判断）",
		FailedTurns:    "机器人多次未能解答",
		UserRequest:    "客户点击了“转人工”",
		Other:          "机器人转交",
	},
}

func (t Texts) withDefaults() Texts {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&t.Fallback, DefaultTexts.Fallback)
	def(&t.NeedsLookup, DefaultTexts.NeedsLookup)
	def(&t.SuggestIntro, DefaultTexts.SuggestIntro)
	def(&t.Escalate, DefaultTexts.Escalate)
	def(&t.EscalateAnger, DefaultTexts.EscalateAnger)
	def(&t.EscalateFailed, DefaultTexts.EscalateFailed)
	def(&t.Empty, DefaultTexts.Empty)
	h, dh := &t.Handover, DefaultTexts.Handover
	def(&h.ReasonLabel, dh.ReasonLabel)
	def(&h.TurnsLabel, dh.TurnsLabel)
	def(&h.TurnsUnit, dh.TurnsUnit)
	def(&h.QuestionsLabel, dh.QuestionsLabel)
	def(&h.NoQuestions, dh.NoQuestions)
	def(&h.HumanRequest, dh.HumanRequest)
	def(&h.Anger, dh.Anger)
	def(&h.Classifier, dh.Classifier)
	def(&h.FailedTurns, dh.FailedTurns)
	def(&h.UserRequest, dh.UserRequest)
	def(&h.Other, dh.Other)
	return t
}
