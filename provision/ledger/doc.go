// Package ledger is the durable record of a factory line: what every station did to every phone,
// kept in SQLite (one station, embedded, the default) or PostgreSQL (a plant: many stations
// writing at once), with the same schema in both.
//
// Terms:
//   - Station: one `provkit line run` process, named by the operator (--station). Each start of
//     it is a session (a random id), so a restart after a crash is told apart from the run before.
//   - Event: one append-only row: station started or stopped, device seen or gone, run started or
//     resumed, step started, step finished (with its evidence as JSON), verdict. Events are never
//     updated or deleted. Events of a run carry a sequence number unique within the run (the
//     database enforces it), so a retried or replayed write cannot duplicate one.
//   - Run: one pass of one phone through a station's steps, from its arrival to its verdict. A
//     run whose station died before the verdict stays open; the next station session that sees
//     the phone resumes it (attempt+1) and redoes the step that was cut short. The database
//     allows at most one open run per serial, and at most one verdict per run.
//   - Verdict: how a run ended: pass, fail, error (the phone could not be processed) or
//     interrupted (the operator stopped the station mid-run). Its evidence (JSON) holds what the
//     steps proved (the check result, the flashed images' digests) and an attestation field left
//     for signed reports.
//   - Device state: derived, one row per serial: its current run, step and whether it is plugged
//     in; updated in the same transaction as the event that changes it.
//   - DSN: where the ledger lives: a file path (SQLite) or a postgres:// URL.
//
// The schema is versioned; Open applies the migrations a database lacks, in a transaction, under
// a lock (an advisory lock on PostgreSQL) so that several stations starting at once migrate once.
package ledger
