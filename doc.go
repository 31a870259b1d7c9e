// Package kefu is the root of the Kefu module: an open-source
// customer-service chat engine for WeChat mini-programs. It holds no code;
// its tests enforce the architecture (package arrows and package docs) that
// docs/architecture.md describes. The binary is cmd/kefu.
package kefu
