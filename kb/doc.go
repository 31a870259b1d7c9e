// Package kb is a tenant's knowledge base: FAQ entries, their JSON and CSV
// import and export, and the Chinese-aware retrieval index the bot answers
// from.
//
// Formats: JSON is an array of entries with the names of Entry's fields
// (the shape of faq-demo.json; "enabled" defaults to true). CSV has a
// header row (CSVHeader, any column order), similar questions and tags
// joined with '|' in one cell, a UTF-8 byte-order mark for Excel, and a
// leading apostrophe on cells that a spreadsheet would run as a formula.
//
// Retrieval: text is normalised (Normalizer: width, case, traditional
// characters, punctuation, particles, a synonym and typo table, product
// categories), split into CJK unigrams and bigrams and ASCII words, and
// scored per phrasing and per entry; Index.Search documents how the
// confidence is derived. Embedding re-rank is optional (IndexConfig.Embedder).
//
// Concurrency contract: an *Index is immutable once Build returns and is
// safe for any number of concurrent readers. Changing a tenant's entries
// means building a new index and swapping it in with Live.Replace; readers
// that loaded the old one finish with it undisturbed. Normalizer is
// immutable too. Parsers and writers hold no state. The package starts no
// goroutines; the OpenAI-compatible Embedder makes network calls only when
// its methods are called, under the caller's context.
package kb
