package kb

import (
	"maps"
	"slices"
	"time"
)

// Change is the result of applying an import or an edit to a knowledge
// base: the entries to store (with versions bumped), the ids to delete, and
// the whole knowledge base afterwards, for validation.
type Change struct {
	Put    []Entry
	Delete []string
	After  []Entry
}

// Merge applies incoming to current: entries are created or replaced by id,
// each written entry's Version is one more than the stored one and its
// UpdatedAt is now; with replace, entries not in incoming are deleted. The
// inputs are not modified. Validate Change.After before storing.
func Merge(current, incoming []Entry, replace bool, now time.Time) Change {
	after := make(map[string]Entry, len(current))
	for _, e := range current {
		after[e.ID] = e
	}
	var ch Change
	if replace {
		keep := make(map[string]bool, len(incoming))
		for _, e := range incoming {
			keep[e.ID] = true
		}
		for _, e := range current {
			if !keep[e.ID] {
				ch.Delete = append(ch.Delete, e.ID)
				delete(after, e.ID)
			}
		}
	}
	for _, e := range incoming {
		e.Version, e.UpdatedAt = after[e.ID].Version+1, now
		after[e.ID] = e
		ch.Put = append(ch.Put, e)
	}
	for _, id := range slices.Sorted(maps.Keys(after)) {
		ch.After = append(ch.After, after[id])
	}
	return ch
}
