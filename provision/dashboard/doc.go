// Package dashboard is the plant's live page over a ledger (provision/ledger): stations (running,
// stale, stopped), phones in progress with their step, pass/fail counts and rate per hour, the
// latest failures with their reasons, and a search by serial showing a phone's whole history and
// evidence. The page is html/template with a little vanilla JavaScript, both embedded (a factory
// network is often offline); it updates through server-sent events (/api/events) that the server
// sends when the ledger's newest event changes. /metrics serves Prometheus metrics.
//
// The dashboard only reads: any method but GET and HEAD is refused. Every string from the ledger
// (serials and reasons come from phones) is escaped by html/template on the server and set with
// textContent in the browser; the Content-Security-Policy allows no inline script.
package dashboard
