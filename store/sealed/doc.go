// Package sealed encrypts personal data at rest: Wrap decorates any
// engine.Store (store/sqlite, store/mongo) so that the fields below reach the
// database only as ciphertext and come back in clear, and the adapters need
// no code of their own for it.
//
// # What is sealed
//
// Every message body (the whole engine.Body, as JSON: its type, text and
// options), the text of private notes, the note of a lifecycle event, and a
// customer's display name and attribute values. Identifiers, states,
// timestamps, tags, attribute names and the knowledge base stay in clear:
// the store filters and sorts by them, and the knowledge base is the
// merchant's published answers, not personal data. A sealed field is
// always ciphertext, empty values included: a value in clear where a
// sealed one belongs is reported as tampering, never passed on.
//
// # Format and keys
//
// A sealed value is the text "enc1:<version>:<base64url(nonce|ciphertext|tag)>":
// AES-256-GCM under version <version> of its tenant's data key, with a
// random 12-byte nonce. The additional authenticated data names the tenant,
// the field and the record (conversation and seq, note id, customer id and
// attribute name), so a value copied to another tenant, record or field
// does not open. Opening fails with an error wrapping ErrTampered (altered,
// moved or not sealed), ErrUnknownKey (no such data key version) or
// ErrUnknownMasterKey (the data key is wrapped by a master key this process
// was not given); it never returns garbage.
//
// Each tenant has data keys of versions 1, 2, ... (32 random bytes each),
// created on its first sealed write; the newest seals new values, every
// version opens. The store keeps them only wrapped (AES-256-GCM, bound to
// tenant and version) by a master key, which it never sees; each wrapped
// key names its master key by id (MasterKeyID). Keys.Rotate adds a new
// version for every tenant and re-wraps every data key under the current
// master key, without rewriting any sealed value.
//
// # Concurrency contract
//
// Store and Keys are safe for concurrent use and start no goroutines.
// Keys.mu guards the map of unwrapped keys by tenant; an entry, once made,
// is never changed (only replaced), so a caller uses the entry it read after
// releasing the lock. Loads from the store run outside the lock and may run
// concurrently; of two loads of one tenant, the one with more versions is
// kept. A value naming a version the cache lacks reloads its tenant's keys
// once (another process may have rotated); the newest version is re-read at
// most every Config.Refresh, by one caller while the others go on with the
// cached keys.
package sealed
