// Package ledger implements `provkit ledger export` (one record per verdict, as CSV or JSON) and
// `provkit ledger stats` (devices per hour, pass rate, failures by rule, per station) over the
// ledger that `provkit line run` writes (provision/ledger).
package ledger
