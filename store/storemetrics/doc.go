// Package storemetrics defines the Prometheus collectors every store adapter
// reports, under the same names and labels, so a dashboard reads the same
// series whichever store runs. It holds no state beyond the collectors an
// adapter creates with New.
package storemetrics
