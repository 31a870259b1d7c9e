package bots

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// HandoverTexts are the words of a hand-over summary. Zero fields take
// DefaultTexts.Handover's.
type HandoverTexts struct {
	ReasonLabel    string // heads the reason line
	TurnsLabel     string // heads the count of turns the bot answered
	TurnsUnit      string // follows that count
	QuestionsLabel string // heads the customer's latest questions
	NoQuestions    string // when the customer asked nothing
	// Reasons, by the escalation's Reason.
	HumanRequest string // ReasonHumanRequest
	Anger        string // ReasonAnger
	Classifier   string // ReasonClassifier
	FailedTurns  string // ReasonFailedTurns
	UserRequest  string // ReasonUserRequest
	Other        string // any other reason
}

// Bounds of a hand-over summary's questions.
const (
	SummaryQuestions     = 3  // the latest this many
	SummaryQuestionRunes = 60 // each cut to this many characters, "…" included
)

// Handover is what a hand-over summary says.
type Handover struct {
	Reason string // the escalation's: a Reason constant
	// BotTurns counts the customer's turns the bot answered.
	BotTurns int
	// Questions are the customer's messages, oldest first; the summary
	// shows the latest SummaryQuestions of them.
	Questions []string
}

// Summary is the short text the agent who takes a conversation over reads:
// why the bot handed it over, how many of the customer's turns it
// answered, and the customer's latest questions, each on a line of its own
// and cut to SummaryQuestionRunes characters. It is deterministic (no
// model is asked) and works on a nil Pipeline, with the default texts: a
// customer may ask for a person with no bot configured.
func (p *Pipeline) Summary(h Handover) string {
	t := DefaultTexts.Handover
	if p != nil {
		t = p.texts.Handover
	}
	reason := t.Other
	switch h.Reason {
	case ReasonHumanRequest:
		reason = t.HumanRequest
	case ReasonAnger:
		reason = t.Anger
	case ReasonClassifier:
		reason = t.Classifier
	case ReasonFailedTurns:
		reason = t.FailedTurns
	case ReasonUserRequest:
		reason = t.UserRequest
	}
	var b strings.Builder
	b.WriteString(t.ReasonLabel + "：" + reason + "\n")
	b.WriteString(t.TurnsLabel + "：" + strconv.Itoa(h.BotTurns) + " " + t.TurnsUnit + "\n")
	b.WriteString(t.QuestionsLabel + "：")
	qs := h.Questions[max(0, len(h.Questions)-SummaryQuestions):]
	if len(qs) == 0 {
		b.WriteString(t.NoQuestions)
	}
	for i, q := range qs {
		b.WriteString("\n" + strconv.Itoa(i+1) + ". " + clip(strings.Join(strings.Fields(q), " "), SummaryQuestionRunes))
	}
	return b.String()
}

// clip cuts s to n characters, the last an ellipsis when it was longer.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
