package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is what differs between SQLite and PostgreSQL.
type dialect struct {
	name string
	// autoID is the type of an auto-incrementing primary key.
	autoID string
	rebind func(string) string
	// isUnique reports a unique-constraint violation.
	isUnique func(error) bool
}

var sqlite = dialect{
	name:   "sqlite",
	autoID: "INTEGER PRIMARY KEY AUTOINCREMENT",
	rebind: func(s string) string { return s },
	isUnique: func(err error) bool {
		var e *msqlite.Error
		return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
	},
}

var postgres = dialect{
	name:   "postgres",
	autoID: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
	rebind: func(s string) string {
		var b strings.Builder
		n := 0
		for _, c := range s {
			if c == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteRune(c)
		}
		return b.String()
	},
	isUnique: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
}

// migrations are the schema's versions in order; migration i brings the schema to version i+1.
// They never change once released: a new version appends one. {{ID}} is the dialect's
// auto-incrementing key. Times are microseconds since 1970 UTC (BIGINT), identical in both
// databases; evidence and reasons are JSON text.
var migrations = []string{
	`CREATE TABLE stations (
		name TEXT PRIMARY KEY,
		session TEXT NOT NULL,
		started_us BIGINT NOT NULL,
		last_seen_us BIGINT NOT NULL,
		stopped_us BIGINT,
		host TEXT NOT NULL DEFAULT '',
		pid INTEGER NOT NULL DEFAULT 0,
		version TEXT NOT NULL DEFAULT '',
		policy_sha256 TEXT NOT NULL DEFAULT '',
		firmware_sha256 TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE runs (
		run_id TEXT PRIMARY KEY,
		serial TEXT NOT NULL,
		station TEXT NOT NULL,
		session TEXT NOT NULL,
		started_us BIGINT NOT NULL,
		policy_sha256 TEXT NOT NULL,
		firmware_sha256 TEXT NOT NULL DEFAULT '',
		attempts INTEGER NOT NULL,
		next_seq INTEGER NOT NULL,
		open INTEGER NOT NULL
	);
	CREATE UNIQUE INDEX runs_one_open_per_serial ON runs (serial) WHERE open = 1;
	CREATE INDEX runs_serial ON runs (serial, started_us);
	CREATE TABLE events (
		id {{ID}},
		at_us BIGINT NOT NULL,
		station TEXT NOT NULL,
		session TEXT,
		serial TEXT,
		run_id TEXT REFERENCES runs (run_id),
		attempt INTEGER,
		seq INTEGER,
		kind TEXT NOT NULL,
		step TEXT,
		ok INTEGER,
		detail TEXT,
		evidence TEXT,
		UNIQUE (run_id, seq)
	);
	CREATE INDEX events_serial ON events (serial, id);
	CREATE INDEX events_at ON events (at_us);
	CREATE TABLE verdicts (
		run_id TEXT PRIMARY KEY REFERENCES runs (run_id),
		serial TEXT NOT NULL,
		station TEXT NOT NULL,
		at_us BIGINT NOT NULL,
		verdict TEXT NOT NULL CHECK (verdict IN ('pass', 'fail', 'error', 'interrupted')),
		policy_sha256 TEXT NOT NULL,
		firmware_sha256 TEXT NOT NULL DEFAULT '',
		reasons TEXT NOT NULL,
		evidence TEXT,
		attestation TEXT
	);
	CREATE INDEX verdicts_at ON verdicts (at_us);
	CREATE INDEX verdicts_serial ON verdicts (serial, at_us);
	CREATE TABLE devices (
		serial TEXT PRIMARY KEY,
		station TEXT NOT NULL,
		run_id TEXT,
		state TEXT NOT NULL DEFAULT 'seen',
		step TEXT NOT NULL DEFAULT '',
		step_started_us BIGINT,
		present INTEGER NOT NULL,
		left_after_verdict INTEGER NOT NULL DEFAULT 0,
		last_verdict TEXT,
		last_verdict_us BIGINT,
		updated_us BIGINT NOT NULL
	);`,
}

// SchemaVersion is the version Open brings a ledger to.
var SchemaVersion = len(migrations)

func (l *Ledger) migrate(ctx context.Context) error {
	return l.tx(ctx, func(t *sql.Tx) error {
		if l.d.name == "postgres" {
			// Stations starting together migrate one at a time.
			if _, err := t.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7254001)`); err != nil {
				return fmt.Errorf("locking for migration: %w", err)
			}
		}
		if _, err := t.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_us BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("creating schema_migrations: %w", err)
		}
		var have sql.NullInt64
		if err := t.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&have); err != nil {
			return fmt.Errorf("reading the schema version: %w", err)
		}
		if int(have.Int64) > len(migrations) {
			return fmt.Errorf("the ledger's schema is version %d, newer than this provkit knows (%d): upgrade provkit", have.Int64, len(migrations))
		}
		for v := int(have.Int64); v < len(migrations); v++ {
			for _, stmt := range strings.Split(strings.ReplaceAll(migrations[v], "{{ID}}", l.d.autoID), ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := t.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migrating to schema version %d: %w", v+1, err)
				}
			}
			if _, err := t.ExecContext(ctx, l.q(`INSERT INTO schema_migrations (version, applied_us) VALUES (?, ?)`), v+1, l.us()); err != nil {
				return fmt.Errorf("migrating to schema version %d: %w", v+1, err)
			}
		}
		return nil
	})
}
