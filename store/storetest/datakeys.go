package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// testDataKeys: a tenant's data key of a version is created once (the
// first writer wins, also when writers race), listed by version per tenant
// and by tenant across tenants, and re-wrapped in place.
func testDataKeys(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta")
	Seed(t, s, "tb")

	created := Epoch.Add(-time.Hour + 250*time.Millisecond)
	a1 := engine.DataKey{Tenant: "ta", Version: 1, MasterKeyID: "m1", Wrapped: []byte("wrapped a1\x00\xff"), CreatedAt: created}
	got, err := s.CreateDataKey(ctx, a1)
	if err != nil || !sameDataKey(got, a1) {
		t.Fatalf("CreateDataKey(a1) = %+v, %v; want it stored", got, err)
	}
	loser := engine.DataKey{Tenant: "ta", Version: 1, MasterKeyID: "m2", Wrapped: []byte("another")}
	if got, err := s.CreateDataKey(ctx, loser); err != nil || !sameDataKey(got, a1) {
		t.Fatalf("second CreateDataKey of v1 = %+v, %v; want the first one", got, err)
	}
	a2 := engine.DataKey{Tenant: "ta", Version: 2, MasterKeyID: "m1", Wrapped: []byte("wrapped a2")}
	got, err = s.CreateDataKey(ctx, a2)
	a2.CreatedAt = Epoch // stamped by the clock
	if err != nil || !sameDataKey(got, a2) {
		t.Fatalf("CreateDataKey(a2) = %+v, %v", got, err)
	}
	b1 := engine.DataKey{Tenant: "tb", Version: 1, MasterKeyID: "m1", Wrapped: []byte("wrapped b1"), CreatedAt: created}
	_, err = s.CreateDataKey(ctx, b1)
	MustOK(t, "create b1", err)

	of := func(tenant string) func() ([]engine.DataKey, error) {
		return func() ([]engine.DataKey, error) { return s.DataKeys(ctx, tenant) }
	}
	all := func() ([]engine.DataKey, error) { return s.AllDataKeys(ctx) }
	wantDataKeys(t, "DataKeys(ta)", of("ta"), a1, a2)
	wantDataKeys(t, "DataKeys(tb)", of("tb"), b1)
	wantDataKeys(t, "DataKeys(nobody)", of("nobody"))
	wantDataKeys(t, "AllDataKeys", all, a1, a2, b1)

	// Re-wrapping replaces the wrapping only.
	re := a1
	re.MasterKeyID, re.Wrapped, re.CreatedAt = "m2", []byte("re-wrapped a1"), Epoch.Add(time.Hour)
	MustOK(t, "rewrap a1", s.RewrapDataKey(ctx, re))
	re.CreatedAt = a1.CreatedAt
	wantDataKeys(t, "DataKeys(ta) after a rewrap", of("ta"), re, a2)
	wantDataKeys(t, "DataKeys(tb) after a rewrap in ta", of("tb"), b1)
	WantErrIs(t, "rewrap of a missing version", s.RewrapDataKey(ctx, engine.DataKey{Tenant: "ta", Version: 3, MasterKeyID: "m2", Wrapped: []byte("x")}), engine.ErrNotFound)
	WantErrIs(t, "rewrap in another tenant", s.RewrapDataKey(ctx, engine.DataKey{Tenant: "tb", Version: 2, MasterKeyID: "m2", Wrapped: []byte("x")}), engine.ErrNotFound)

	_, err = s.CreateDataKey(ctx, engine.DataKey{Tenant: "nobody", Version: 1, MasterKeyID: "m1", Wrapped: []byte("x")})
	WantErrIs(t, "data key of an unknown tenant", err, engine.ErrNotFound)
	for name, k := range map[string]engine.DataKey{
		"no tenant":        {Version: 1, MasterKeyID: "m1", Wrapped: []byte("x")},
		"version 0":        {Tenant: "ta", MasterKeyID: "m1", Wrapped: []byte("x")},
		"no master key":    {Tenant: "ta", Version: 5, Wrapped: []byte("x")},
		"no wrapped key":   {Tenant: "ta", Version: 5, MasterKeyID: "m1"},
		"negative version": {Tenant: "ta", Version: -1, MasterKeyID: "m1", Wrapped: []byte("x")},
	} {
		if _, err := s.CreateDataKey(ctx, k); err == nil {
			t.Errorf("CreateDataKey with %s was accepted", name)
		}
		if k.Version != 0 && k.Version != -1 {
			if err := s.RewrapDataKey(ctx, k); err == nil {
				t.Errorf("RewrapDataKey with %s was accepted", name)
			}
		}
	}
	wantDataKeys(t, "AllDataKeys after the refusals", all, re, a2, b1)

	// Racing creators of one version all get the same key.
	const racers = 8
	keys := make([]engine.DataKey, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			k, err := s.CreateDataKey(ctx, engine.DataKey{Tenant: "tb", Version: 2, MasterKeyID: "m1", Wrapped: fmt.Appendf(nil, "racer %d", i)})
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i := range keys {
		if !sameDataKey(keys[i], keys[0]) || len(keys[i].Wrapped) == 0 {
			t.Fatalf("racers got different keys: %+v", keys)
		}
	}
	wantDataKeys(t, "DataKeys(tb) after the race", of("tb"), b1, keys[0])
}

func sameDataKey(a, b engine.DataKey) bool {
	return a.Tenant == b.Tenant && a.Version == b.Version && a.MasterKeyID == b.MasterKeyID &&
		bytes.Equal(a.Wrapped, b.Wrapped) && a.CreatedAt.Equal(b.CreatedAt)
}

func wantDataKeys(t *testing.T, what string, list func() ([]engine.DataKey, error), want ...engine.DataKey) {
	t.Helper()
	got, err := list()
	if err != nil || !slices.EqualFunc(got, want, sameDataKey) {
		t.Fatalf("%s = %+v, %v; want %+v", what, got, err, want)
	}
}
