// Command ferretdb runs the tests' MongoDB-wire server (FerretDB over
// SQLite, see package mongotest) as a process of its own, so the cluster
// tests' kefu processes can share one store. It prints "ferretdb ready
// <uri>" once it accepts connections and runs until SIGTERM or SIGINT.
// Tests only: it is never part of the kefu binary.
package main
