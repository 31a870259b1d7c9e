// Package bots is the AI/FAQ bot: for each user message it runs
//
//	rules → FAQ retrieval → LLM → escalation decision
//
// Rules escalates explicit requests for a person and anger (a lexicon, and
// an optional Classifier such as the LLM). FAQ answers from the tenant's
// kb.Index at high confidence, offers "did you mean" at medium and gives
// an honest fallback at low. LLM, when configured, answers low-confidence
// questions from the retrieved entries only, streaming, and falls back to
// the FAQ-only reply on any error or timeout. Decide escalates after too
// many turns without an answer. Each stage is a small exported type with
// its own tests; Pipeline wires them. Assist serves agents, and Summary
// tells the agent who takes a conversation over why the bot handed it over
// and what the customer asked (deterministic: no model is asked).
//
// Concurrency contract: Pipeline, Rules, FAQ, LLM and Decide hold no
// mutable state after construction and are safe for concurrent use. A
// Pipeline keeps nothing per conversation: the caller passes the tenant's
// current index and the conversation's failed-turn count with each turn.
// The package starts no goroutines of its own; network calls (the LLM and
// classifier) run on the caller's goroutine under the caller's context.
// There is no actor code here: the bot runner actor calls Respond off its
// mailbox.
package bots
