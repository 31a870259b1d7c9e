# Developer shortcuts. The test entry point is scripts/test (see README).
PROTOC_GEN_GO_VERSION := v1.36.12
GOBIN ?= $(shell go env GOPATH)/bin

.PHONY: proto web test run

proto:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler"; exit 1; }
	GOBIN=$(GOBIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	PATH="$(GOBIN):$$PATH" protoc --proto_path=actors/actorpb --go_out=paths=source_relative:actors/actorpb actors/actorpb/kefu.proto

# The built UI (web/dist) is committed so `go run ./cmd/kefu` serves it.
web:
	cd web && npm install --no-save && npm run build

test:
	scripts/test

run:
	go run ./cmd/kefu
