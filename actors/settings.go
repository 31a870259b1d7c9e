package actors

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// SettingsCache holds tenants' routing and timer settings on one node, so
// conversations and queues do not read them from the store on every use.
// A change made on this node is seen at once (Invalidate); one made on
// another node within the cache's TTL.
type SettingsCache struct {
	store engine.Store
	ttl   time.Duration
	mu    sync.Mutex
	byID  map[string]cachedSettings
}

type cachedSettings struct {
	s  engine.TenantSettings
	at time.Time
}

// NewSettingsCache returns a cache over store; ttl 0 means 10 seconds.
func NewSettingsCache(store engine.Store, ttl time.Duration) *SettingsCache {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	return &SettingsCache{store: store, ttl: ttl, byID: make(map[string]cachedSettings)}
}

// Get returns the tenant's settings with defaults filled in. It may read
// the store: never call it inside an actor's Receive.
func (c *SettingsCache) Get(ctx context.Context, tenant string) (engine.TenantSettings, error) {
	c.mu.Lock()
	e, ok := c.byID[tenant]
	c.mu.Unlock()
	if ok && time.Since(e.at) < c.ttl {
		return e.s, nil
	}
	s, err := c.store.TenantSettings(ctx, tenant)
	if errors.Is(err, engine.ErrNotFound) {
		s, err = engine.TenantSettings{Tenant: tenant}, nil
	}
	if err != nil {
		return engine.TenantSettings{}, err
	}
	s = s.WithDefaults()
	c.mu.Lock()
	c.byID[tenant] = cachedSettings{s: s, at: time.Now()}
	c.mu.Unlock()
	return s, nil
}

// Invalidate drops the tenant's cached settings.
func (c *SettingsCache) Invalidate(tenant string) {
	c.mu.Lock()
	delete(c.byID, tenant)
	c.mu.Unlock()
}
