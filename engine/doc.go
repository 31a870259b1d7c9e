// Package engine is Kefu's domain: identifiers, messages, conversations and
// their states, the client protocol's frames and error codes, and the ports
// (interfaces) that storage and transport adapters implement.
//
// It imports only the standard library and nothing else from the module, so
// every other package can depend on it. It owns no goroutines and no mutable
// package state: values go in, values come out. Functions here are pure where
// possible and are tested exhaustively.
package engine
