package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/kb"
)

const kbUsage = `usage:
  kefu kb import FILE --tenant T [--replace] [--format json|csv] [settings flags]
  kefu kb export --tenant T [--format json|csv] [settings flags]

import creates or replaces the entries of FILE (the JSON shape of the demo
FAQ, or CSV with a header row) in tenant T's knowledge base; --replace also
deletes the entries FILE does not have. export writes the knowledge base to
standard output. Settings flags (-data_dir, -config...) locate the store as
for kefu serve. A running server picks the change up within 30 seconds; the
REST API (/v1/kb/import) applies it at once.
`

// runKB implements `kefu kb`.
func runKB(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || (args[0] != "import" && args[0] != "export") {
		fmt.Fprint(stderr, kbUsage)
		return 2
	}
	verb := args[0]
	var file, tenant, format string
	var replace bool
	var rest []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case a == "--tenant" || a == "-tenant":
			tenant = next()
		case strings.HasPrefix(a, "--tenant="):
			tenant = strings.TrimPrefix(a, "--tenant=")
		case a == "--format" || a == "-format":
			format = next()
		case strings.HasPrefix(a, "--format="):
			format = strings.TrimPrefix(a, "--format=")
		case a == "--replace" || a == "-replace":
			replace = true
		case !strings.HasPrefix(a, "-") && file == "" && verb == "import":
			file = a
		default:
			rest = append(rest, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				rest = append(rest, next())
			}
		}
	}
	if tenant == "" || (verb == "import" && file == "") {
		fmt.Fprint(stderr, kbUsage)
		return 2
	}
	if format == "" {
		format = "json"
		if strings.HasSuffix(strings.ToLower(file), ".csv") {
			format = "csv"
		}
	}
	if format != "json" && format != "csv" {
		fmt.Fprintf(stderr, "kefu kb: --format must be json or csv\n")
		return 2
	}
	cfg, err := config.Load(rest, getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "kefu kb: invalid configuration:\n  %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, _, _, err := openStore(ctx, cfg, logger, nil)
	if err != nil {
		fmt.Fprintf(stderr, "kefu kb: opening the store: %v\n", err)
		return 1
	}
	defer store.Close()
	if _, err := store.Tenant(ctx, tenant); err != nil {
		fmt.Fprintf(stderr, "kefu kb: tenant %q: %v\n", tenant, err)
		return 1
	}
	if verb == "export" {
		stored, err := store.FAQEntries(ctx, tenant)
		if err != nil {
			fmt.Fprintf(stderr, "kefu kb: %v\n", err)
			return 1
		}
		current := actors.EntriesFromStore(stored)
		if format == "csv" {
			err = kb.WriteCSV(stdout, current)
		} else {
			err = kb.WriteJSON(stdout, current)
		}
		if err != nil {
			fmt.Fprintf(stderr, "kefu kb: %v\n", err)
			return 1
		}
		return 0
	}

	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "kefu kb: %v\n", err)
		return 1
	}
	var incoming []kb.Entry
	if format == "csv" {
		incoming, err = kb.ParseCSV(bytes.NewReader(data))
	} else {
		incoming, err = kb.ParseJSON(bytes.NewReader(data))
	}
	if err != nil {
		fmt.Fprintf(stderr, "kefu kb: %s: %v\n", file, err)
		return 1
	}
	ch, err := actors.ApplyKBChange(ctx, store, tenant, incoming, replace, time.Now().UTC())
	if err != nil {
		fmt.Fprintf(stderr, "kefu kb: %s: %v\n", file, err)
		return 1
	}
	fmt.Fprintf(stdout, "imported %d entries into %s (%d deleted); the knowledge base has %d\n", len(ch.Put), tenant, len(ch.Delete), len(ch.After))
	return 0
}
