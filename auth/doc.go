// Package auth is Kefu's credentials and tokens: argon2id password hashes
// for staff accounts, random secrets for generated passwords and keys, and
// the compact HS256 JWTs that the edge hands to customers and staff and
// checks on every WebSocket hello and REST call.
//
// It imports only the standard library, engine and golang.org/x/crypto.
// Nothing here does I/O or owns a goroutine.
//
// # Concurrency
//
// Everything in this package is stateless or immutable after construction
// and safe for concurrent use by any number of goroutines. A [Keyring] never
// changes once [NewKeyring] returns; a [Signer] or [Verifier] must not be
// modified while it is in use. To rotate keys, build a new Keyring and a new
// Verifier and publish them (for instance through an atomic.Pointer); tokens
// signed under an old key id keep verifying for as long as the new Keyring
// still holds that key.
//
// # Tokens
//
// Tokens are signed with HMAC-SHA256 only. A [Verifier] pins the algorithm,
// takes the key solely from its Keyring by the header's kid, and checks the
// signature in constant time before it reads a single claim. Every rejection
// wraps [ErrInvalidToken]; an expired token's error also matches [ErrExpired].
//
// # Passwords
//
// [HashPassword] writes argon2id hashes in the PHC string format.
// [VerifyPassword] reads the parameters back from the string, so hashes made
// with stronger parameters in a later version keep verifying, and refuses
// parameters large enough to turn a stored hash into a denial of service.
// After a successful login, [NeedsRehash] tells the caller to store a fresh
// hash made with the current parameters.
package auth
