package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kefu-dev/kefu/bench"
)

// runBench is `kefu bench`: it drives a running Kefu through real
// WebSockets and prints the figures (see docs/performance.md). It returns
// the exit code: 0 for a clean run, 1 when messages were lost or
// duplicated or errors occurred, 2 for bad flags or a run that could not
// start.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kefu bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.Config
	var mix string
	var asJSON, quiet bool
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "base HTTP URL of the running Kefu")
	fs.StringVar(&cfg.AgentURL, "agent-url", "", "base HTTP URL the agent sockets use, e.g. another edge of a cluster (default: -url)")
	fs.StringVar(&cfg.Tenant, "tenant", "demo", "tenant to load")
	fs.StringVar(&cfg.AdminUser, "admin-user", "admin", "staff account whose token the agents use")
	fs.StringVar(&cfg.AdminPassword, "admin-password", os.Getenv("KEFU_ADMIN_PASSWORD"), "its password (default $KEFU_ADMIN_PASSWORD)")
	fs.IntVar(&cfg.Users, "users", 0, "customer sockets; each owns convs/users conversations (default: convs)")
	fs.IntVar(&cfg.Agents, "agents", 10, "agent sockets; each follows convs/agents conversations")
	fs.IntVar(&cfg.Convs, "convs", 100, "active conversations")
	fs.Float64Var(&cfg.Rate, "rate", 200, "scheduled messages and escalations per second, open loop")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long the load runs (idle mode: how long the sockets are held)")
	fs.StringVar(&mix, "mix", bench.DefaultMix.String(), "event weights user, agent, faq and escalate, and reconnections per event, or a user:agent ratio")
	fs.StringVar(&cfg.Baseline, "baseline", "before", "when to measure the raw echo baseline: before, during or off")
	fs.DurationVar(&cfg.Drain, "drain", 30*time.Second, "how long to wait for the last acks and deliveries")
	fs.IntVar(&cfg.Idle, "idle", 0, "idle mode: open this many sockets that only answer pings, and report memory per connection")
	fs.IntVar(&cfg.Sources, "sources", 0, "loopback source addresses 127.0.0.1..N to spread sockets over (default: 1 per 25,000 sockets)")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 64, "sockets and REST calls in flight during the setup")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object instead of a table")
	fs.BoolVar(&quiet, "q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kefu bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var err error
	if cfg.Mix, err = bench.ParseMix(mix); err != nil {
		fmt.Fprintln(stderr, "kefu bench:", err)
		return 2
	}
	if !quiet {
		cfg.Log = stderr
	}
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "kefu bench:", strings.TrimPrefix(err.Error(), "bench: "))
		return 2
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kefu bench:", err)
		return 2
	}
	if rep.Lost > 0 || rep.Duplicated > 0 || rep.Errors > 0 {
		return 1
	}
	return 0
}
