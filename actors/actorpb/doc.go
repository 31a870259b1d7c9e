// Package actorpb holds the protobuf messages that actors exchange. They are
// generated from kefu.proto by `make proto`; the generated code is committed
// and CI checks that it is fresh. Nothing here has behaviour or state.
package actorpb
