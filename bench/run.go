package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// runner is one load run's shared state.
type runner struct {
	cfg   Config
	api   *api
	dl    *dialer
	tag   string // prefix of every client_msg_id of this run
	start time.Time

	ackH, u2aH, a2uH, botH, resumeH *histogram
	escH, queueWaitH                *histogram
	esc                             *escalations

	ledger *ledger
	errs   *counter

	sent, acked, reconnects atomic.Int64
	dispatched, handled     atomic.Int64 // events given to clients, and processed by them
	lastAck                 atomic.Int64 // offset of the last first-ack, ns

	welcomeMu sync.Mutex
	rateLimit int // the server's frames per second per socket, from welcome
}

func (r *runner) since() time.Duration { return time.Since(r.start) }

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "bench: "+format+"\n", args...)
}

func (r *runner) msgID(n int64, due time.Duration) string {
	return r.tag + "-" + strconv.FormatInt(n, 10) + "-" + strconv.FormatInt(due.Microseconds(), 10)
}

func (r *runner) dueOf(id string) (time.Duration, bool) {
	_, due, ok := parseMsgID(r.tag, id)
	return due, ok
}

func (r *runner) noteWelcome(w welcome) {
	r.welcomeMu.Lock()
	if r.rateLimit == 0 || w.RatePerSec < r.rateLimit {
		r.rateLimit = w.RatePerSec
	}
	r.welcomeMu.Unlock()
}

// counter counts errors by kind. It is safe for concurrent use.
type counter struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counter) add(kind string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]int64)
	}
	c.m[kind]++
	c.mu.Unlock()
}

func (c *counter) snapshot() (total int64, byKind map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byKind = make(map[string]int64, len(c.m))
	for k, v := range c.m {
		byKind[k] = v
		total += v
	}
	return total, byKind
}

// convInfo is one conversation of the load and its two followers. An
// escalation's has no agent until routing assigns it.
type convInfo struct {
	id           string
	user, agent  *client
	uview, aview *view
}

// Run drives the load described by cfg against a running Kefu and returns
// the report. It returns an error only when the run could not be carried
// out (no server, wrong password, too few file descriptors...); failures
// of the server under load are counted in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.Idle > 0 {
		return runIdle(ctx, cfg)
	}
	raiseFileLimit(uint64(2*(cfg.Users+cfg.Agents) + 1024))
	tag := make([]byte, 4)
	_, _ = rand.Read(tag)
	r := &runner{
		cfg: cfg, api: newAPI(cfg.URL, cfg.DialConcurrency), tag: "b" + hex.EncodeToString(tag),
		ackH: newHistogram(), u2aH: newHistogram(), a2uH: newHistogram(), botH: newHistogram(), resumeH: newHistogram(),
		escH: newHistogram(), queueWaitH: newHistogram(),
		ledger: newLedger(), errs: &counter{}, start: time.Now(),
	}
	defer r.api.close()
	dl, err := newDialer(cfg.URL, cfg.AgentURL, cfg.Sources, 4096)
	if err != nil {
		return nil, err
	}
	r.dl = dl

	// Setup: accounts, conversations, sockets, subscriptions.
	r.logf("setup: %d conversations, %d users, %d agents against %s (agents: %s)", cfg.Convs, cfg.Users, cfg.Agents, cfg.URL, cfg.AgentURL)
	admin, err := r.api.login(ctx, cfg.Tenant, cfg.AdminUser, cfg.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("bench: staff login (set -admin-password or KEFU_ADMIN_PASSWORD): %w", err)
	}
	// Each agent is an account of its own, able to hold every conversation
	// it follows (a reply takes a conversation over, within capacity).
	convs := make([]*convInfo, cfg.Convs)
	users := make([]*client, cfg.Users)
	agents := make([]*client, cfg.Agents)
	perAgent := (cfg.Convs + cfg.Agents - 1) / cfg.Agents
	err = parallel(ctx, cfg.Agents, 1, func(a int) error { // one at a time: argon2id is bounded per core
		token, err := r.api.createAgent(ctx, cfg.Tenant, admin, fmt.Sprintf("bench-%s-%d", r.tag, a), "bench-"+r.tag+"-password", perAgent, engine.DefaultGroup)
		agents[a] = newClient(r, a, roleAgent, token)
		// Away: they answer the conversations they follow (a reply takes
		// one over) and are never routed others.
		agents[a].presence = "away"
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bench: creating agent accounts: %w", err)
	}
	setupStart := time.Now()
	err = parallel(ctx, cfg.Users, cfg.DialConcurrency, func(u int) error {
		token, _, err := r.api.visitor(ctx, cfg.Tenant)
		if err != nil {
			return err
		}
		users[u] = newClient(r, u, roleUser, token)
		for i := u; i < cfg.Convs; i += cfg.Users {
			id, err := r.api.newConversation(ctx, token)
			if err != nil {
				return err
			}
			convs[i] = &convInfo{id: id, user: users[u]}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, c := range convs {
		c.uview = c.user.follow(c.id)
		c.agent = agents[i%cfg.Agents]
		c.aview = c.agent.follow(c.id)
	}
	r.logf("setup: %d conversations created in %v", cfg.Convs, time.Since(setupStart).Round(time.Millisecond))
	var routed, escUsers []*client
	var pool []*convInfo
	if n := cfg.escalations(); n > 0 {
		var undo func()
		routed, escUsers, pool, undo, err = r.setupEscalations(ctx, admin, n)
		defer undo()
		if err != nil {
			return nil, err
		}
		r.logf("setup: %d escalations: as many conversations with the bot, %d customers, %d routed agents", n, len(escUsers), len(routed))
	}
	r.esc = newEscalations(pool)

	rssBefore, rssErr := r.api.metric(ctx, "process_resident_memory_bytes")
	users = append(users, escUsers...) // they drop and resume too
	all := append(append(append([]*client(nil), users...), agents...), routed...)
	connStart := time.Now()
	err = parallel(ctx, len(all), cfg.DialConcurrency, func(i int) error { return all[i].connect(ctx) })
	defer func() {
		for _, c := range all {
			if c.conn != nil {
				c.conn.Close()
				<-c.readerDone
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	connElapsed := time.Since(connStart)
	time.Sleep(500 * time.Millisecond) // let the server's RSS settle after the burst
	rssAfter, _ := r.api.metric(ctx, "process_resident_memory_bytes")
	r.logf("setup: %d sockets connected and subscribed in %v", len(all), connElapsed.Round(time.Millisecond))

	userRate, agentRate := cfg.perConnRates()
	if lim := float64(r.rateLimit); lim > 0 && max(userRate, agentRate) > 0.8*lim {
		return nil, fmt.Errorf("bench: each user socket would send %.1f and each agent socket %.1f frames/s, over 80%% of the server's limit of %g per socket (ws.rate_per_sec): raise -users/-agents or start the server with a higher -ws.rate_per_sec and -ws.burst",
			userRate, agentRate, lim)
	}

	rep := &Report{Mode: "load", Config: reportConfig(cfg), Connections: len(all)}
	if cfg.Baseline == "before" {
		b, err := runEcho(ctx, cfg.Rate, min(cfg.Duration, 10*time.Second), 16, cfg.Log)
		if err != nil {
			return nil, err
		}
		rep.Baseline = b
	}

	// Load.
	cpuBefore := r.sampleCPU(ctx)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, c := range all {
		wg.Add(1)
		go func() { defer wg.Done(); c.loop(ctx, stop) }()
	}
	stopLoops := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoops()
	var echoDone chan Latency
	if cfg.Baseline == "during" {
		echoDone = make(chan Latency, 1)
		go func() {
			b, err := runEcho(ctx, cfg.Rate, cfg.Duration, 16, cfg.Log)
			if err != nil {
				r.logf("baseline: %v", err)
			}
			echoDone <- b
		}()
	}
	r.logf("load: %g msgs/s for %v, mix %s", cfg.Rate, cfg.Duration, cfg.Mix)
	loadStart := r.since()
	r.pace(ctx, loadStart, convs, pool, users)
	loadElapsed := r.since() - loadStart
	for _, c := range all {
		close(c.events)
	}
	if echoDone != nil {
		rep.Baseline = <-echoDone
	}

	// Drain: wait for the last acks and pushes.
	r.logf("drain: waiting up to %v for the last acks and deliveries", cfg.Drain)
	deadline := time.Now().Add(cfg.Drain)
	for !r.drained(convs, pool, all) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	stopLoops()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cpuAfter := r.sampleCPU(ctx)

	// Check against the server's history.
	for _, c := range pool { // its routed agent follows it, if it was assigned
		if a := r.esc.agentOf(c.id); a != nil {
			a.mu.Lock()
			c.aview = a.byConv[c.id]
			a.mu.Unlock()
			if c.aview != nil {
				c.agent = a
			}
		}
	}
	checked := append(convs, pool...)
	r.logf("check: paging %d histories", len(checked))
	ck := Check{}
	var ckMu sync.Mutex
	err = parallel(ctx, len(checked), min(cfg.DialConcurrency, 16), func(i int) error {
		c := checked[i]
		hist, err := r.api.history(ctx, admin, c.id)
		if err != nil {
			return err
		}
		followers := map[string]*view{roleUser: c.uview}
		c.user.mu.Lock()
		defer c.user.mu.Unlock()
		if c.agent != nil {
			c.agent.mu.Lock()
			defer c.agent.mu.Unlock()
			followers[roleAgent] = c.aview
		}
		ckMu.Lock()
		r.ledger.checkConversation(&ck, c.id, hist, followers)
		ckMu.Unlock()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bench: reading the histories: %w", err)
	}
	r.ledger.mu.Lock()
	ck.DupAcked = r.ledger.conflicts
	r.ledger.mu.Unlock()
	for _, c := range all {
		c.mu.Lock()
		ck.Unacked += int64(len(c.pending))
		for _, v := range c.views {
			ck.BotUnanswered += int64(len(v.faqDue))
		}
		c.mu.Unlock()
	}
	for range ck.Unacked {
		r.errs.add("unacked")
	}
	esc := EscalationCounts{Requested: r.esc.requested.Load(), Assigned: r.esc.assigned.Load(), Answered: r.esc.answered.Load(), Closed: r.esc.closed.Load()}
	for range esc.Requested - esc.Assigned {
		r.errs.add("escalation_unassigned")
	}
	for range esc.Assigned - esc.Answered {
		r.errs.add("escalation_unanswered")
	}
	for range esc.Answered - esc.Closed {
		r.errs.add("escalation_unclosed")
	}
	for _, c := range all {
		c.close()
	}

	// Report.
	rep.DurationSec = round3(loadElapsed.Seconds())
	rep.Sent, rep.Acked = r.sent.Load(), r.acked.Load()
	if last := time.Duration(r.lastAck.Load()) - loadStart; last > 0 {
		rep.MsgsPerSec = round1(float64(rep.Acked) / max(last, cfg.Duration).Seconds())
	}
	rep.Reconnects = r.reconnects.Load()
	rep.Errors, rep.ErrorKinds = r.errs.snapshot()
	rep.Check = ck
	rep.Lost, rep.Duplicated = ck.lost(), ck.duplicated()
	rep.AckMs, rep.UserToAgentMs, rep.AgentToUserMs = r.ackH.summary(), r.u2aH.summary(), r.a2uH.summary()
	rep.BotReplyMs, rep.ResumeMs = r.botH.summary(), r.resumeH.summary()
	rep.EscalationMs, rep.QueueWaitMs, rep.Escalations = r.escH.summary(), r.queueWaitH.summary(), esc
	for _, l := range []*Latency{&rep.AckMs, &rep.UserToAgentMs, &rep.AgentToUserMs, &rep.BotReplyMs, &rep.ResumeMs, &rep.EscalationMs, &rep.QueueWaitMs} {
		l.relativeTo(rep.Baseline)
	}
	if rssErr == nil && rssAfter > 0 {
		rep.ServerRSSBefore, rep.ServerRSSAfter = int64(rssBefore), int64(rssAfter)
		rep.RSSBytesPerConn = int64(math.Round((rssAfter - rssBefore) / float64(len(all))))
	} else {
		rep.Notes = append(rep.Notes, "server RSS unknown: "+fmt.Sprint(rssErr))
	}
	rep.HarnessRSS = selfRSS()
	var cpuNotes []string
	rep.CPU, cpuNotes = cpuFigures(cpuBefore, cpuAfter, rep.Acked)
	rep.Notes = append(rep.Notes, cpuNotes...)
	if cfg.AgentURL != cfg.URL {
		rep.Notes = append(rep.Notes, "cpu: server_s is the -url server's process only; the agents' edge and the rest of the cluster are not counted")
	}
	rep.ConnectsPerSec = round1(float64(len(all)) / connElapsed.Seconds())
	if cfg.Mix.FAQ == 0 {
		rep.Notes = append(rep.Notes, "bot_reply_ms: no FAQ questions in the mix (faq=0)")
	} else if rep.BotReplyMs.N == 0 {
		rep.Notes = append(rep.Notes, "bot_reply_ms: no bot answered (is the tenant's bot off, or are its conversations taken over?); FAQ questions were stored and delivered as user messages")
	}
	if ck.BotUnanswered > 0 && rep.BotReplyMs.N > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("bot_reply_ms: %d FAQ questions got no bot answer", ck.BotUnanswered))
	}
	rep.Notes = append(rep.Notes, "rss_bytes_per_conn: the server's RSS growth while the sockets connected and subscribed, divided by the sockets")
	rep.fillHost()
	return rep, nil
}

// cpuSample is the CPU time the server and this process had used at one
// instant.
type cpuSample struct {
	at        time.Time
	server    float64 // seconds
	serverErr error
	harness   time.Duration
	harnessOK bool
}

func (r *runner) sampleCPU(ctx context.Context) cpuSample {
	s := cpuSample{at: time.Now()}
	s.harness, s.harnessOK = selfCPU()
	s.server, s.serverErr = r.api.metric(ctx, "process_cpu_seconds_total")
	return s
}

// cpuFigures is the CPU used between two samples, with a note for each
// figure that could not be read.
func cpuFigures(before, after cpuSample, acked int64) (*CPU, []string) {
	var server, harness float64
	var notes []string
	if err := cmp.Or(before.serverErr, after.serverErr); err != nil {
		notes = append(notes, "cpu: server CPU unknown: "+err.Error())
	} else {
		server = after.server - before.server
	}
	if before.harnessOK && after.harnessOK {
		harness = (after.harness - before.harness).Seconds()
	} else {
		notes = append(notes, "cpu: harness CPU unknown: no getrusage on "+runtime.GOOS)
	}
	return newCPU(server, harness, after.at.Sub(before.at).Seconds(), runtime.NumCPU(), acked), notes
}

// pace runs the schedule: event k is due at k/rate after the start. It is
// an escalation of the pool's next conversation (see Config.isEscalation)
// or a message for conversation k mod convs in a shuffled order; the pacer
// never waits for a reply (open loop).
func (r *runner) pace(ctx context.Context, base time.Duration, convs, pool []*convInfo, users []*client) {
	cfg := r.cfg
	rng := mrand.New(mrand.NewPCG(1, 2))
	order := rng.Perm(len(convs))
	messages := cfg.Mix.User + cfg.Mix.Agent + cfg.Mix.FAQ
	escalated := 0
	for k := int64(0); ; k++ {
		offset := cfg.offset(k)
		if offset >= cfg.Duration {
			return
		}
		due := base + offset
		if wait := due - r.since(); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		}
		c := convs[order[k%int64(len(convs))]]
		pick := rng.Float64() * messages
		ev := event{kind: evSend, view: c.uview, n: k, due: due}
		to := c.user
		switch {
		case cfg.isEscalation(k):
			c = pool[escalated]
			escalated++
			r.esc.schedule(c.id, k, due)
			ev, to = event{kind: evEscalate, view: c.uview, n: k, due: due}, c.user
		case pick < cfg.Mix.Agent:
			ev.view, to = c.aview, c.agent
		case pick < cfg.Mix.Agent+cfg.Mix.FAQ:
			ev.kind = evFAQ
		}
		if !r.dispatch(ctx, to, ev) {
			return
		}
		if cfg.Mix.Reconnect > 0 && rng.Float64() < cfg.Mix.Reconnect {
			u := users[rng.IntN(len(users))]
			if !r.dispatch(ctx, u, event{kind: evReconnect, n: k, due: due}) {
				return
			}
		}
	}
}

func (r *runner) dispatch(ctx context.Context, c *client, ev event) bool {
	select {
	case c.events <- ev:
		r.dispatched.Add(1)
		return true
	case <-ctx.Done():
		return false
	}
}

// drained reports whether every send is acked, every follower has every
// acked message and every escalation was answered and closed.
func (r *runner) drained(convs, pool []*convInfo, all []*client) bool {
	if r.handled.Load() < r.dispatched.Load() || !r.esc.settled() {
		return false
	}
	for _, c := range all {
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n > 0 {
			return false
		}
	}
	has := func(cl *client, v *view, last int64) bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return v.delivered >= last
	}
	for _, c := range convs {
		last := r.ledger.lastSeq(c.id)
		if !has(c.user, c.uview, last) || !has(c.agent, c.aview, last) {
			return false
		}
	}
	// An escalation's only acked message is its agent's answer.
	for _, c := range pool {
		if !has(c.user, c.uview, r.ledger.lastSeq(c.id)) {
			return false
		}
	}
	return true
}

// parallel runs fn(0..n-1) on at most width goroutines and returns the
// first error (the rest still finish).
func parallel(ctx context.Context, n, width int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		once  sync.Once
		first error
	)
	for range min(width, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n)) // stop handing out work
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
