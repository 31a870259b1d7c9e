package sealed

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// KeySize is the size of master and data keys: AES-256.
const KeySize = 32

// Errors of opening a sealed value or unwrapping a data key.
var (
	// ErrTampered: the value or wrapped key was altered, moved to another
	// record, or is not sealed at all.
	ErrTampered = errors.New("sealed: value altered, moved or not sealed")
	// ErrUnknownKey: the value names a data key version its tenant does
	// not have.
	ErrUnknownKey = errors.New("sealed: unknown data key")
	// ErrUnknownMasterKey: a data key is wrapped by a master key that is
	// not configured.
	ErrUnknownMasterKey = errors.New("sealed: master key not configured")
)

// Config configures NewKeys.
type Config struct {
	// MasterKeys are AES-256 master keys of KeySize bytes. The first is
	// current: it wraps new and re-wrapped data keys. The others only
	// unwrap the data keys they wrapped before a rotation. Required.
	MasterKeys [][]byte
	// Refresh is how long a tenant's newest data key is used from memory
	// before the store is asked again, so that new values move to a
	// version another process created (kefu keys rotate) within about this
	// long. Zero means one minute.
	Refresh time.Duration
	// Clock times Refresh. Nil means engine.SystemClock.
	Clock engine.Clock
}

const defaultRefresh = time.Minute

// Keys holds the master keys and the tenants' unwrapped data keys. Its
// methods are safe for concurrent use (see doc.go).
type Keys struct {
	ks      engine.DataKeyStore
	current string                 // the id of the master key that wraps
	masters map[string]cipher.AEAD // by id
	refresh time.Duration
	clock   engine.Clock

	mu      sync.RWMutex
	tenants map[string]*tenantKeys
}

// tenantKeys are one tenant's data keys as read at loadedAt. Only
// reloading changes after it is made.
type tenantKeys struct {
	newest   int
	aeads    map[int]cipher.AEAD // by version
	loadedAt time.Time
	// reloading elects the one caller that refreshes a stale entry.
	reloading atomic.Bool
}

// NewKeys returns the keys of the data keys ks stores, wrapped by
// cfg.MasterKeys.
func NewKeys(ks engine.DataKeyStore, cfg Config) (*Keys, error) {
	if len(cfg.MasterKeys) == 0 {
		return nil, errors.New("sealed: no master key")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = defaultRefresh
	}
	if cfg.Clock == nil {
		cfg.Clock = engine.SystemClock{}
	}
	k := &Keys{ks: ks, masters: map[string]cipher.AEAD{}, refresh: cfg.Refresh, clock: cfg.Clock,
		tenants: map[string]*tenantKeys{}}
	for i, key := range cfg.MasterKeys {
		aead, err := newAEAD(key)
		if err != nil {
			return nil, fmt.Errorf("sealed: master key %d: %w", i+1, err)
		}
		id := MasterKeyID(key)
		if i == 0 {
			k.current = id
		}
		k.masters[id] = aead
	}
	return k, nil
}

// MasterKeyID names a master key without revealing it: the first 16 hex
// digits of its SHA-256.
func MasterKeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// CurrentMasterKeyID is the id of the master key that wraps data keys.
func (k *Keys) CurrentMasterKeyID() string { return k.current }

// NewMasterKey returns a new random master key, base64-encoded as
// ParseMasterKeys reads it.
func NewMasterKey() string {
	key := make([]byte, KeySize)
	rand.Read(key) // never fails: crypto/rand crashes the program instead
	return base64.StdEncoding.EncodeToString(key)
}

// ParseMasterKeys reads master keys written in base64 (standard alphabet,
// padded: `openssl rand -base64 32`), one per line or separated by commas.
// Blank lines and lines starting with # are skipped. Errors name a key by
// its position only, never by its text.
func ParseMasterKeys(text string) ([][]byte, error) {
	var keys [][]byte
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for field := range strings.SplitSeq(line, ",") {
			key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(field))
			if err != nil || len(key) != KeySize {
				return nil, fmt.Errorf("sealed: master key %d is not %d bytes in base64", len(keys)+1, KeySize)
			}
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("sealed: no master key")
	}
	return keys, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("a key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// wrapAAD binds a wrapped data key to its tenant and version.
func wrapAAD(tenant string, version int) []byte {
	return aad("datakey", tenant, strconv.Itoa(version))
}

// wrap encrypts a data key under the current master key.
func (k *Keys) wrap(tenant string, version int, key []byte) []byte {
	m := k.masters[k.current]
	out := make([]byte, nonceSize, nonceSize+len(key)+m.Overhead())
	rand.Read(out) // never fails
	return m.Seal(out, out, key, wrapAAD(tenant, version))
}

// unwrap decrypts a stored data key.
func (k *Keys) unwrap(dk engine.DataKey) ([]byte, error) {
	m, ok := k.masters[dk.MasterKeyID]
	if !ok {
		return nil, fmt.Errorf("sealed: data key v%d of tenant %s is wrapped by master key %s: %w",
			dk.Version, dk.Tenant, dk.MasterKeyID, ErrUnknownMasterKey)
	}
	if len(dk.Wrapped) < nonceSize+m.Overhead() {
		return nil, fmt.Errorf("sealed: data key v%d of tenant %s is too short: %w", dk.Version, dk.Tenant, ErrTampered)
	}
	key, err := m.Open(nil, dk.Wrapped[:nonceSize], dk.Wrapped[nonceSize:], wrapAAD(dk.Tenant, dk.Version))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("sealed: data key v%d of tenant %s does not unwrap with master key %s: %w",
			dk.Version, dk.Tenant, dk.MasterKeyID, ErrTampered)
	}
	return key, nil
}

// cached returns the tenant's entry, or nil.
func (k *Keys) cached(tenant string) *tenantKeys {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.tenants[tenant]
}

// load reads the tenant's data keys from the store and caches them. A
// tenant without keys gets an entry with newest 0, which is not cached.
func (k *Keys) load(ctx context.Context, tenant string) (*tenantKeys, error) {
	stored, err := k.ks.DataKeys(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("sealed: data keys of %s: %w", tenant, err)
	}
	tk := &tenantKeys{aeads: make(map[int]cipher.AEAD, len(stored)), loadedAt: k.clock.Now()}
	for _, dk := range stored {
		key, err := k.unwrap(dk)
		if err != nil {
			return nil, err
		}
		if tk.aeads[dk.Version], err = newAEAD(key); err != nil {
			return nil, fmt.Errorf("sealed: data key v%d of tenant %s: %w", dk.Version, tenant, err)
		}
		tk.newest = max(tk.newest, dk.Version)
	}
	if tk.newest == 0 {
		return tk, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	// A concurrent load may have seen a newer version than this one did.
	if old := k.tenants[tenant]; old != nil && old.newest > tk.newest {
		return old, nil
	}
	k.tenants[tenant] = tk
	return tk, nil
}

// create stores a new random data key of version for tenant, unless one
// exists, and loads the tenant's keys.
func (k *Keys) create(ctx context.Context, tenant string, version int) (*tenantKeys, error) {
	key := make([]byte, KeySize)
	rand.Read(key) // never fails
	_, err := k.ks.CreateDataKey(ctx, engine.DataKey{Tenant: tenant, Version: version, MasterKeyID: k.current,
		Wrapped: k.wrap(tenant, version, key)})
	if err != nil {
		return nil, fmt.Errorf("sealed: create data key v%d of %s: %w", version, tenant, err)
	}
	return k.load(ctx, tenant)
}

// sealer returns the tenant's newest data key and its version, creating
// version 1 on the tenant's first sealed write.
func (k *Keys) sealer(ctx context.Context, tenant string) (int, cipher.AEAD, error) {
	if tenant == "" {
		return 0, nil, errors.New("sealed: no tenant")
	}
	tk := k.cached(tenant)
	var err error
	switch {
	case tk == nil:
		tk, err = k.load(ctx, tenant)
	case k.clock.Now().Sub(tk.loadedAt) >= k.refresh && tk.reloading.CompareAndSwap(false, true):
		stale := tk
		tk, err = k.load(ctx, tenant)
		stale.reloading.Store(false) // if the load failed or kept it, let a later caller try
	}
	if err == nil && tk.newest == 0 {
		tk, err = k.create(ctx, tenant, 1)
	}
	if err != nil {
		return 0, nil, err
	}
	if tk.newest == 0 {
		return 0, nil, fmt.Errorf("sealed: tenant %s has no data key after creating one", tenant)
	}
	return tk.newest, tk.aeads[tk.newest], nil
}

// opener returns version of the tenant's data key, reading the store once
// if the cache lacks it.
func (k *Keys) opener(ctx context.Context, tenant string, version int) (cipher.AEAD, error) {
	if tk := k.cached(tenant); tk != nil {
		if aead := tk.aeads[version]; aead != nil {
			return aead, nil
		}
	}
	tk, err := k.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if aead := tk.aeads[version]; aead != nil {
		return aead, nil
	}
	return nil, fmt.Errorf("sealed: tenant %s has no data key v%d: %w", tenant, version, ErrUnknownKey)
}

// Status describes the stored data keys.
type Status struct {
	Tenants int // tenants with data keys
	Keys    int // data keys, all versions
	// Stale counts the data keys wrapped by an older master key: Rotate
	// re-wraps them under the current one.
	Stale int
}

// Check unwraps every stored data key, so that a missing or wrong master
// key stops a start rather than the first read of a tenant.
func (k *Keys) Check(ctx context.Context) (Status, error) {
	all, err := k.ks.AllDataKeys(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("sealed: data keys: %w", err)
	}
	var st Status
	for i, dk := range all {
		if _, err := k.unwrap(dk); err != nil {
			return Status{}, err
		}
		if i == 0 || dk.Tenant != all[i-1].Tenant {
			st.Tenants++
		}
		st.Keys++
		if dk.MasterKeyID != k.current {
			st.Stale++
		}
	}
	return st, nil
}

// Rotation reports what Rotate did.
type Rotation struct {
	Tenants   int // tenants with data keys, each given a new version
	Created   int // new data key versions this call stored
	Rewrapped int // data keys re-wrapped under the current master key
}

// Rotate gives every tenant that has data keys a new version, which seals
// new values from then on, and re-wraps every data key that an older master
// key wraps under the current one. No sealed value is rewritten: every
// version still opens. Running it again after a failure is safe.
func (k *Keys) Rotate(ctx context.Context) (Rotation, error) {
	all, err := k.ks.AllDataKeys(ctx)
	if err != nil {
		return Rotation{}, fmt.Errorf("sealed: data keys: %w", err)
	}
	var r Rotation
	for i := 0; i < len(all); {
		tenant, newest := all[i].Tenant, 0
		for ; i < len(all) && all[i].Tenant == tenant; i++ {
			dk := all[i]
			key, err := k.unwrap(dk)
			if err != nil {
				return r, err
			}
			newest = max(newest, dk.Version)
			if dk.MasterKeyID == k.current {
				continue
			}
			dk.MasterKeyID, dk.Wrapped = k.current, k.wrap(dk.Tenant, dk.Version, key)
			if err := k.ks.RewrapDataKey(ctx, dk); err != nil {
				return r, fmt.Errorf("sealed: re-wrap data key v%d of %s: %w", dk.Version, tenant, err)
			}
			r.Rewrapped++
		}
		key := make([]byte, KeySize)
		rand.Read(key) // never fails
		next := engine.DataKey{Tenant: tenant, Version: newest + 1, MasterKeyID: k.current, Wrapped: k.wrap(tenant, newest+1, key)}
		stored, err := k.ks.CreateDataKey(ctx, next)
		if err != nil {
			return r, fmt.Errorf("sealed: create data key v%d of %s: %w", next.Version, tenant, err)
		}
		if bytes.Equal(stored.Wrapped, next.Wrapped) { // else a concurrent rotation made it
			r.Created++
		}
		r.Tenants++
		k.mu.Lock()
		delete(k.tenants, tenant) // this process seals with the new version at once
		k.mu.Unlock()
	}
	return r, nil
}
