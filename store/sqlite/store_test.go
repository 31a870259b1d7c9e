package sqlite

import (
	"testing"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storetest"
)

// TestConformance runs the store conformance suite shared with every other
// adapter. SQLite-specific behaviour (schema, query plans, the writer) is
// tested in this package's other files.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock engine.Clock) engine.Store {
		return openTest(t, Config{Clock: clock})
	})
}
