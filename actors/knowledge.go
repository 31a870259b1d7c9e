package actors

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/kb"
)

// Knowledge keeps each tenant's built FAQ index on this node, for the bot
// and agent assist. An index is built from the store on first use and
// rebuilt after every change made through this node; changes made
// elsewhere (another node, `kefu kb import`) are picked up within
// Revalidate. Readers get an immutable *kb.Index and never wait for a
// rebuild. Knowledge is safe for concurrent use: it is a read cache
// beside the store, not actor state.
type Knowledge struct {
	store      engine.Store
	cfg        kb.IndexConfig
	revalidate time.Duration
	log        *slog.Logger

	mu      sync.Mutex
	tenants map[string]*tenantIndex
}

type tenantIndex struct {
	build    sync.Mutex    // one build at a time, so a slow one never replaces a newer
	ready    chan struct{} // closed once the first build finished
	err      error         // of the first build; the entry is then dropped
	live     *kb.Live
	stamp    string    // what the index was built from
	checked  time.Time // last comparison with the store
	checking bool
}

// NewKnowledge returns an empty cache over store. revalidate <= 0 means 30s.
func NewKnowledge(store engine.Store, cfg kb.IndexConfig, revalidate time.Duration, logger *slog.Logger) *Knowledge {
	if revalidate <= 0 {
		revalidate = 30 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Knowledge{store: store, cfg: cfg, revalidate: revalidate, log: logger, tenants: make(map[string]*tenantIndex)}
}

// Index returns the tenant's current index, building it on first use.
func (k *Knowledge) Index(ctx context.Context, tenant string) (*kb.Index, error) {
	k.mu.Lock()
	t, ok := k.tenants[tenant]
	if !ok {
		t = &tenantIndex{ready: make(chan struct{})}
		k.tenants[tenant] = t
		go k.firstBuild(tenant, t)
	}
	k.mu.Unlock()
	select {
	case <-t.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if t.err != nil {
		return nil, t.err
	}
	k.mu.Lock()
	if !t.checking && time.Since(t.checked) > k.revalidate {
		t.checking = true
		go k.refresh(tenant, t, false)
	}
	k.mu.Unlock()
	return t.live.Load(), nil
}

// Rebuild rebuilds the tenant's index from the store now, after a change.
func (k *Knowledge) Rebuild(ctx context.Context, tenant string) error {
	k.mu.Lock()
	t, ok := k.tenants[tenant]
	k.mu.Unlock()
	if !ok {
		_, err := k.Index(ctx, tenant)
		return err
	}
	select {
	case <-t.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if t.err != nil {
		return t.err
	}
	return k.refresh(tenant, t, true)
}

func (k *Knowledge) firstBuild(tenant string, t *tenantIndex) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	idx, stamp, err := k.build(ctx, tenant)
	if err != nil {
		k.log.Error("building the knowledge index", "tenant", tenant, "err", err)
		t.err = err
		k.mu.Lock()
		delete(k.tenants, tenant) // the next caller tries again
		k.mu.Unlock()
	} else {
		t.live, t.stamp, t.checked = kb.NewLive(idx), stamp, time.Now()
	}
	close(t.ready)
}

// refresh compares the store with what the index was built from and
// rebuilds when they differ (or always, with force).
func (k *Knowledge) refresh(tenant string, t *tenantIndex, force bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.build.Lock()
	defer t.build.Unlock()
	entries, err := k.store.FAQEntries(ctx, tenant)
	k.mu.Lock()
	t.checking, t.checked = false, time.Now()
	same := err == nil && !force && stampOf(entries) == t.stamp
	k.mu.Unlock()
	if err != nil {
		k.log.Warn("checking the knowledge base", "tenant", tenant, "err", err)
		return err
	}
	if same {
		return nil
	}
	idx, err := k.buildIndex(ctx, tenant, entries)
	if err != nil {
		k.log.Error("rebuilding the knowledge index", "tenant", tenant, "err", err)
		return err
	}
	t.live.Replace(idx)
	k.mu.Lock()
	t.stamp = stampOf(entries)
	k.mu.Unlock()
	return nil
}

func (k *Knowledge) build(ctx context.Context, tenant string) (*kb.Index, string, error) {
	entries, err := k.store.FAQEntries(ctx, tenant)
	if err != nil {
		return nil, "", err
	}
	idx, err := k.buildIndex(ctx, tenant, entries)
	return idx, stampOf(entries), err
}

// buildIndex builds an index; when only the optional embeddings fail, the
// lexical index is used and the failure logged.
func (k *Knowledge) buildIndex(ctx context.Context, tenant string, entries []engine.FAQEntry) (*kb.Index, error) {
	idx, err := kb.BuildContext(ctx, EntriesFromStore(entries), k.cfg)
	if err != nil && idx != nil && errors.Is(err, kb.ErrEmbedding) {
		k.log.Warn("embedding the knowledge base failed; retrieval is lexical only", "tenant", tenant, "err", err)
		return idx, nil
	}
	return idx, err
}

// stampOf fingerprints a tenant's entries: every change bumps a version.
func stampOf(entries []engine.FAQEntry) string {
	h := fnv.New64a()
	for _, e := range entries {
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", e.ID, e.Version, e.UpdatedAt.UnixMilli())
	}
	return fmt.Sprintf("%d:%x", len(entries), h.Sum64())
}

// EntriesFromStore converts stored entries to kb entries.
func EntriesFromStore(in []engine.FAQEntry) []kb.Entry {
	out := make([]kb.Entry, len(in))
	for i, e := range in {
		out[i] = kb.Entry{ID: e.ID, Category: e.Category, Question: e.Question, Similar: e.Similar, Answer: e.Answer,
			Tags: e.Tags, Enabled: e.Enabled, UpdatedAt: e.UpdatedAt, Version: e.Version}
	}
	return out
}

// EntriesToStore converts kb entries to their stored form.
func EntriesToStore(in []kb.Entry) []engine.FAQEntry {
	out := make([]engine.FAQEntry, len(in))
	for i, e := range in {
		out[i] = engine.FAQEntry{ID: e.ID, Category: e.Category, Question: e.Question, Similar: e.Similar, Answer: e.Answer,
			Tags: e.Tags, Enabled: e.Enabled, UpdatedAt: e.UpdatedAt, Version: e.Version}
	}
	return out
}

// ApplyKBChange merges incoming into the tenant's stored knowledge base
// (kb.Merge: versions bumped, with replace the others deleted), validates
// the whole result and stores it. A validation error wraps kb.ErrInvalid or
// kb.ErrDuplicate and nothing is stored; any other error is the store's.
// Callers serialise changes per tenant (the tenant actor does).
func ApplyKBChange(ctx context.Context, s engine.KnowledgeStore, tenant string, incoming []kb.Entry, replace bool, now time.Time) (kb.Change, error) {
	stored, err := s.FAQEntries(ctx, tenant)
	if err != nil {
		return kb.Change{}, err
	}
	ch := kb.Merge(EntriesFromStore(stored), incoming, replace, now)
	if err := kb.ValidateAll(ch.After); err != nil {
		return ch, err
	}
	if err := s.PutFAQ(ctx, tenant, EntriesToStore(ch.Put)); err != nil {
		return ch, err
	}
	for _, id := range ch.Delete {
		if err := s.DeleteFAQ(ctx, tenant, id); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return ch, fmt.Errorf("deleting %s (the rest is stored): %w", id, err)
		}
	}
	return ch, nil
}
