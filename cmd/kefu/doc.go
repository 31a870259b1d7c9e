// Command kefu runs the Kefu customer-service chat engine.
//
//	kefu [serve] [flags]    run everything on this machine (the default), or
//	                        one role of a cluster: -role node|edge with -cluster.etcd
//	kefu kb import|export   manage a tenant's knowledge base
//	kefu keys rotate        new data key versions, re-wrapped under the current master key
//	kefu eval --kb FILE --set FILE.jsonl [--json]
//	                        measure the bot on labelled utterances
//	kefu bench [flags]      load a running Kefu and report what it measures
//	kefu version            print the version
//
// This package is wiring only: it loads the configuration, builds the store,
// the actor cluster and the edge, and shuts them down in order. Every
// setting is described in kefu.example.yaml and `kefu serve -h`.
package main
