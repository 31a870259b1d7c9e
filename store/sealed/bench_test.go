package sealed

import (
	"context"
	"testing"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storetest"
)

// BenchmarkSealOpen measures what sealing adds to one message: sealing its
// body on the way in and opening it on the way out (JSON, AES-256-GCM,
// base64), with the tenant's data key cached as it is after the first use.
func BenchmarkSealOpen(b *testing.B) {
	ctx := context.Background()
	inner, _ := openSQLite(b, storetest.FixedClock{T: epoch})
	s := Wrap(inner, newKeys(b, inner, Config{}))
	storetest.Seed(b, s, "ta", "c1")
	m := storetest.Msg("ta", "c1", 1)
	m.Body.Text = "您好，我上周五下的订单到现在还没有发货，订单号是 2026110512345，能帮我查一下吗？"
	storetest.AppendAll(b, s, []engine.Message{m}) // creates and caches the data key
	b.ReportAllocs()
	for b.Loop() {
		mm := m
		if err := s.sealBody(ctx, &mm); err != nil {
			b.Fatal(err)
		}
		if err := s.openBody(ctx, &mm); err != nil {
			b.Fatal(err)
		}
	}
}
