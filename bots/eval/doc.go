// Package eval measures the bot on labelled utterances: top-1 accuracy on
// answerable lines, recall and precision of escalation, and how often the
// bot answers questions the knowledge base cannot answer. It backs the
// `kefu eval` command and the test that keeps the dev-set targets.
//
// It lives under bots, not kb, because it runs the whole pipeline (rules,
// retrieval, thresholds, LLM), and kb must not depend on bots.
//
// Concurrency contract: Run evaluates lines one after another on the
// caller's goroutine; the package holds no state. Reports are values.
package eval
