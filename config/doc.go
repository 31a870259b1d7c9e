// Package config loads Kefu's configuration into plain structs: defaults,
// then an optional YAML file, then KEFU_* environment variables, then
// command-line flags, each overriding the one before; then it validates the
// result and says exactly which setting is wrong. Only cmd imports it. It
// has no state beyond the values it returns.
package config
