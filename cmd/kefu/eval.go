package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/kefu-dev/kefu/bots"
	"github.com/kefu-dev/kefu/bots/eval"
	"github.com/kefu-dev/kefu/kb"
)

// runEval implements `kefu eval --kb FILE --set FILE.jsonl [--json]`: it
// runs the bot over labelled utterances and prints top-1 accuracy on
// answerable lines, recall and precision of escalation, the false-answer
// rate on unanswerable lines and the confusions. The bot is FAQ-only
// unless an LLM is configured with --llm-base-url and --llm-model (or
// KEFU_BOT_LLM_BASE_URL and KEFU_BOT_LLM_MODEL); the key comes from
// KEFU_BOT_LLM_API_KEY only, so it never shows in a process list. Exit codes:
// 0 done, 1 a file or the LLM could not be used, 2 bad usage.
func runEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kefu eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kbPath := fs.String("kb", "", "knowledge base `file` (JSON like faq-demo.json, or CSV when it ends in .csv)")
	setPath := fs.String("set", "", "labelled set `file`, JSON Lines of {\"q\": ..., \"expect\": entry id | \"human\" | \"none\"}")
	asJSON := fs.Bool("json", false, "print one JSON object instead of tables")
	high := fs.Float64("high", 0, "confidence to answer at (0: the bot's default)")
	medium := fs.Float64("medium", 0, "confidence to suggest at (0: the bot's default)")
	llmURL := fs.String("llm-base-url", os.Getenv("KEFU_BOT_LLM_BASE_URL"), "OpenAI-compatible base `URL` for the LLM stage (empty: FAQ-only)")
	llmModel := fs.String("llm-model", os.Getenv("KEFU_BOT_LLM_MODEL"), "LLM model `name`")
	llmTimeout := fs.Duration("llm-timeout", 15*time.Second, "timeout of one LLM answer")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kefu eval --kb FILE --set FILE.jsonl [--json] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *kbPath == "" || *setPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}

	entries, err := eval.LoadEntries(*kbPath)
	if err != nil {
		fmt.Fprintf(stderr, "kefu eval: knowledge base: %v\n", err)
		return 1
	}
	idx, err := kb.Build(entries, kb.IndexConfig{})
	if err != nil {
		fmt.Fprintf(stderr, "kefu eval: knowledge base: %v\n", err)
		return 1
	}
	f, err := os.Open(*setPath)
	if err != nil {
		fmt.Fprintf(stderr, "kefu eval: %v\n", err)
		return 1
	}
	lines, err := eval.ReadLines(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "kefu eval: %v\n", err)
		return 1
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg := bots.Config{FAQ: bots.FAQ{High: *high, Medium: *medium}, Logger: logger}
	mode := "FAQ-only"
	if *llmURL != "" || *llmModel != "" {
		llm, err := bots.NewLLM(bots.LLMConfig{
			BaseURL: *llmURL, Model: *llmModel, APIKey: os.Getenv("KEFU_BOT_LLM_API_KEY"),
			Timeout: *llmTimeout, Logger: logger,
		})
		if err != nil {
			fmt.Fprintf(stderr, "kefu eval: %v\n", err)
			return 1
		}
		cfg.LLM = llm
		mode = "with LLM " + *llmModel
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep := eval.RunContext(ctx, bots.New(cfg), idx, lines)

	if *asJSON {
		data, err := rep.JSON()
		if err != nil {
			fmt.Fprintf(stderr, "kefu eval: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, string(data))
		return 0
	}
	fmt.Fprintf(stdout, "kefu eval: %s, %d entries, %d lines\n\n", mode, idx.Len(), len(lines))
	if err := rep.WriteText(stdout); err != nil {
		fmt.Fprintf(stderr, "kefu eval: %v\n", err)
		return 1
	}
	return 0
}
