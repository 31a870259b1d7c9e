// Package kb is a tenant's knowledge base: FAQ entries, their JSON and CSV
// import and export, and the Chinese-aware retrieval index the bot answers
// from.
//
// Concurrency contract: an *Index is immutable once Build returns and is
// safe for any number of concurrent readers. Changing a tenant's entries
// means building a new index and swapping it in with Live.Replace; readers
// that loaded the old one finish with it undisturbed. Normalizer is
// immutable too. Parsers and writers hold no state. The package starts no
// goroutines; the OpenAI-compatible Embedder makes network calls only when
// its methods are called, under the caller's context.
package kb
