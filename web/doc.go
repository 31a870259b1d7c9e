// Package web holds the browser UI's sources (Vue 3, built with Vite) and
// embeds their committed build, web/dist, so the kefu binary serves the
// agent workspace (/workspace/) and the customers' chat widget (/chat/)
// with no Node at run time. Rebuild with `make web`; the test command
// checks that dist matches its sources.
package web
