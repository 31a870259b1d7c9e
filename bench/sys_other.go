//go:build !unix

package bench

import "time"

func raiseFileLimit(want uint64) uint64 { return want }

// selfCPU is unavailable here: there is no getrusage.
func selfCPU() (time.Duration, bool) { return 0, false }
