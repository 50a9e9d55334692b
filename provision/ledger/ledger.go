package ledger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// Verdicts a run ends with.
const (
	VerdictPass        = "pass"
	VerdictFail        = "fail"
	VerdictError       = "error"
	VerdictInterrupted = "interrupted"
)

// Event kinds.
const (
	EventStationStarted = "station-started"
	EventStationStopped = "station-stopped"
	EventDeviceSeen     = "device-seen"
	EventDeviceGone     = "device-gone"
	EventRunStarted     = "run-started"
	EventRunResumed     = "run-resumed"
	EventStepStarted    = "step-started"
	EventStepFinished   = "step-finished"
	EventVerdict        = "verdict"
)

// Errors.
var (
	// ErrDuplicateVerdict: the run already has a verdict (the database refused a second one).
	ErrDuplicateVerdict = errors.New("the run already has a verdict")
	// ErrRunBusy: another live station holds an open run for this serial.
	ErrRunBusy = errors.New("another station is processing this serial")
	// ErrRunLost: the run was taken over by another station session.
	ErrRunLost = errors.New("the run was taken over by another station session")
)

// Ledger is an open ledger. It is safe for concurrent use.
type Ledger struct {
	db    *sql.DB
	d     dialect
	where string
	now   func() time.Time
}

// DefaultPath is the SQLite ledger used when --ledger is omitted:
// $XDG_STATE_HOME/provkit/ledger.db, or ~/.local/state/provkit/ledger.db.
func DefaultPath() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "provkit", "ledger.db"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the default ledger path: %w; give --ledger <path>", err)
	}
	return filepath.Join(home, ".local", "state", "provkit", "ledger.db"), nil
}

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens (creating it if needed) the ledger at dsn: a file path for SQLite ("" is
// DefaultPath) or a postgres:// URL, and applies the migrations the database lacks.
func Open(ctx context.Context, dsn string) (*Ledger, error) {
	l := &Ledger{now: time.Now}
	var err error
	if IsPostgres(dsn) {
		l.d = postgres
		l.where = redact(dsn)
		l.db, err = sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("opening ledger %s: %w", l.where, err)
		}
		l.db.SetMaxOpenConns(8)
	} else {
		if dsn == "" {
			if dsn, err = DefaultPath(); err != nil {
				return nil, err
			}
		}
		if strings.Contains(dsn, "://") {
			return nil, fmt.Errorf("opening ledger %q: use a file path (SQLite) or a postgres:// URL", dsn)
		}
		if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
			return nil, fmt.Errorf("opening ledger %s: %w", dsn, err)
		}
		l.d = sqlite
		l.where = dsn
		// WAL lets the dashboard read while a station writes. synchronous=NORMAL makes every
		// commit survive a crash of the process; verdicts are committed with synchronous=FULL
		// (see syncTx), so that a recorded verdict also survives a power cut. Immediate
		// transactions take the write lock up front, so two writers never deadlock upgrading a
		// read lock.
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(30000)", "foreign_keys(1)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		l.db, err = sql.Open("sqlite", "file:"+filepath.ToSlash(dsn)+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("opening ledger %s: %w", dsn, err)
		}
		l.db.SetMaxOpenConns(4)
	}
	if err := l.migrate(ctx); err != nil {
		l.db.Close()
		return nil, fmt.Errorf("opening ledger %s: %w", l.where, err)
	}
	return l, nil
}

// redact hides a password in a postgres URL.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}

// Where names the ledger for messages: the SQLite path or the URL without its password.
func (l *Ledger) Where() string { return l.where }

// Kind is "sqlite" or "postgres".
func (l *Ledger) Kind() string { return l.d.name }

// Close closes the database.
func (l *Ledger) Close() error { return l.db.Close() }

// DB exposes the database for read-only queries in tests and tools.
func (l *Ledger) DB() *sql.DB { return l.db }

func (l *Ledger) us() int64 { return l.now().UTC().UnixMicro() }

// q rewrites a query written with ? placeholders for the dialect.
func (l *Ledger) q(s string) string { return l.d.rebind(s) }

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tx runs f in a transaction, committing if it returns nil.
func (l *Ledger) tx(ctx context.Context, f func(*sql.Tx) error) error {
	t, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(t); err != nil {
		_ = t.Rollback()
		return err
	}
	return t.Commit()
}

// syncTx is tx for a write that must survive a power cut (a verdict): on SQLite its commit waits
// until the write-ahead log is on disk (synchronous=FULL for this transaction's connection).
// PostgreSQL commits are durable already (synchronous_commit is the server's to set).
func (l *Ledger) syncTx(ctx context.Context, f func(*sql.Tx) error) error {
	if l.d.name != "sqlite" {
		return l.tx(ctx, f)
	}
	c, err := l.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
		return err
	}
	// Back to NORMAL before the connection returns to the pool, whatever happens.
	defer c.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = NORMAL`)
	t, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(t); err != nil {
		_ = t.Rollback()
		return err
	}
	return t.Commit()
}

// Event is one row of the append-only log.
type Event struct {
	ID       int64           `json:"id"`
	Time     time.Time       `json:"time"`
	Station  string          `json:"station"`
	Session  string          `json:"session,omitempty"`
	Serial   string          `json:"serial,omitempty"`
	RunID    string          `json:"runId,omitempty"`
	Attempt  int             `json:"attempt,omitempty"`
	Seq      int             `json:"seq,omitempty"`
	Kind     string          `json:"kind"`
	Step     string          `json:"step,omitempty"`
	OK       *bool           `json:"ok,omitempty"`
	Detail   string          `json:"detail,omitempty"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

func jsonText(v any) (sql.NullString, error) {
	if v == nil {
		return sql.NullString{}, nil
	}
	if raw, ok := v.(json.RawMessage); ok {
		if len(raw) == 0 {
			return sql.NullString{}, nil
		}
		return sql.NullString{String: string(raw), Valid: true}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return sql.NullString{}, fmt.Errorf("encoding evidence: %w", err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

// insertEvent appends an event inside t.
func (l *Ledger) insertEvent(ctx context.Context, t *sql.Tx, e Event, evidence any) error {
	ev, err := jsonText(evidence)
	if err != nil {
		return err
	}
	var ok sql.NullInt64
	if e.OK != nil {
		ok.Valid = true
		if *e.OK {
			ok.Int64 = 1
		}
	}
	nullStr := func(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
	nullInt := func(i int) sql.NullInt64 { return sql.NullInt64{Int64: int64(i), Valid: i != 0} }
	_, err = t.ExecContext(ctx, l.q(`INSERT INTO events (at_us, station, session, serial, run_id, attempt, seq, kind, step, ok, detail, evidence)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		e.Time.UTC().UnixMicro(), e.Station, nullStr(e.Session), nullStr(e.Serial), nullStr(e.RunID), nullInt(e.Attempt), nullInt(e.Seq),
		e.Kind, nullStr(e.Step), ok, nullStr(e.Detail), ev)
	if err != nil {
		return fmt.Errorf("recording %s event: %w", e.Kind, err)
	}
	return nil
}

// StationInfo describes a station session.
type StationInfo struct {
	Name           string
	Host           string
	PID            int
	Version        string
	PolicySHA256   string
	FirmwareSHA256 string
}

// Station is a started station session.
type Station struct {
	l       *Ledger
	Name    string
	Session string
}

// StartStation records a station session's start and returns it.
func (l *Ledger) StartStation(ctx context.Context, in StationInfo) (*Station, error) {
	if in.Name == "" {
		return nil, errors.New("starting station: empty name")
	}
	s := &Station{l: l, Name: in.Name, Session: newID()}
	now := l.us()
	err := l.tx(ctx, func(t *sql.Tx) error {
		_, err := t.ExecContext(ctx, l.q(`INSERT INTO stations (name, session, started_us, last_seen_us, stopped_us, host, pid, version, policy_sha256, firmware_sha256)
			VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET session = excluded.session, started_us = excluded.started_us, last_seen_us = excluded.last_seen_us,
			stopped_us = NULL, host = excluded.host, pid = excluded.pid, version = excluded.version, policy_sha256 = excluded.policy_sha256,
			firmware_sha256 = excluded.firmware_sha256`),
			in.Name, s.Session, now, now, in.Host, in.PID, in.Version, in.PolicySHA256, in.FirmwareSHA256)
		if err != nil {
			return fmt.Errorf("recording station %q: %w", in.Name, err)
		}
		return l.insertEvent(ctx, t, Event{Time: time.UnixMicro(now), Station: in.Name, Session: s.Session, Kind: EventStationStarted},
			map[string]any{"host": in.Host, "pid": in.PID, "version": in.Version, "policySha256": in.PolicySHA256, "firmwareSha256": in.FirmwareSHA256})
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Heartbeat says the station is alive (the dashboard shows stations not heard from as stale).
func (s *Station) Heartbeat(ctx context.Context) error {
	_, err := s.l.db.ExecContext(ctx, s.l.q(`UPDATE stations SET last_seen_us = ? WHERE name = ? AND session = ?`), s.l.us(), s.Name, s.Session)
	return err
}

// Stop records the station session's end.
func (s *Station) Stop(ctx context.Context) error {
	now := s.l.us()
	return s.l.tx(ctx, func(t *sql.Tx) error {
		if _, err := t.ExecContext(ctx, s.l.q(`UPDATE stations SET stopped_us = ?, last_seen_us = ? WHERE name = ? AND session = ?`), now, now, s.Name, s.Session); err != nil {
			return err
		}
		return s.l.insertEvent(ctx, t, Event{Time: time.UnixMicro(now), Station: s.Name, Session: s.Session, Kind: EventStationStopped}, nil)
	})
}

// DeviceSeen records that a phone arrived at (present) or left (!present) the station.
func (s *Station) DeviceSeen(ctx context.Context, serial string, present bool, detail string) error {
	now := s.l.us()
	kind := EventDeviceSeen
	if !present {
		kind = EventDeviceGone
	}
	return s.l.tx(ctx, func(t *sql.Tx) error {
		if err := s.l.insertEvent(ctx, t, Event{Time: time.UnixMicro(now), Station: s.Name, Session: s.Session, Serial: serial, Kind: kind, Detail: detail}, nil); err != nil {
			return err
		}
		p := 0
		if present {
			p = 1
		}
		// left_after_verdict remembers that the phone was unplugged once its verdict was given:
		// a failed phone is re-run only after that.
		_, err := t.ExecContext(ctx, s.l.q(`INSERT INTO devices (serial, station, present, left_after_verdict, updated_us) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (serial) DO UPDATE SET station = excluded.station, present = excluded.present,
			left_after_verdict = CASE WHEN excluded.present = 0 THEN 1 ELSE devices.left_after_verdict END, updated_us = excluded.updated_us`),
			serial, s.Name, p, 1-p, now)
		if err != nil {
			return fmt.Errorf("recording %s for %s: %w", kind, serial, err)
		}
		return nil
	})
}

// LastRun is what the ledger knows of a serial's latest run.
type LastRun struct {
	RunID            string
	Station          string
	Open             bool // no verdict yet
	Verdict          string
	VerdictTime      time.Time
	PolicySHA256     string
	FirmwareSHA256   string
	LeftAfterVerdict bool // unplugged since its verdict
}

// Last returns the serial's latest run, or nil when it has none.
func (l *Ledger) Last(ctx context.Context, serial string) (*LastRun, error) {
	var r LastRun
	var open int
	var verdict sql.NullString
	var vus sql.NullInt64
	err := l.db.QueryRowContext(ctx, l.q(`SELECT r.run_id, r.station, r.open, r.policy_sha256, r.firmware_sha256, v.verdict, v.at_us
		FROM runs r LEFT JOIN verdicts v ON v.run_id = r.run_id WHERE r.serial = ? ORDER BY r.started_us DESC, r.run_id DESC LIMIT 1`), serial).
		Scan(&r.RunID, &r.Station, &open, &r.PolicySHA256, &r.FirmwareSHA256, &verdict, &vus)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s's last run: %w", serial, err)
	}
	r.Open, r.Verdict = open == 1, verdict.String
	if vus.Valid {
		r.VerdictTime = time.UnixMicro(vus.Int64).UTC()
	}
	var left sql.NullInt64
	err = l.db.QueryRowContext(ctx, l.q(`SELECT left_after_verdict FROM devices WHERE serial = ?`), serial).Scan(&left)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("reading %s's state: %w", serial, err)
	}
	r.LeftAfterVerdict = left.Int64 == 1
	return &r, nil
}

// RunSpec says what a run is for.
type RunSpec struct {
	Serial         string
	PolicySHA256   string
	FirmwareSHA256 string // "" for a check-only station
}

// Run is an open run held by this station session.
type Run struct {
	s       *Station
	ID      string
	Serial  string
	Attempt int
	// Resumed says the run was started by an earlier session that stopped before its verdict.
	Resumed bool
	// Finished lists the steps an earlier attempt finished successfully (resumed runs only),
	// and Evidence their evidence.
	Finished map[string]bool
	Evidence map[string]json.RawMessage
	spec     RunSpec
}

// staleAfter is how long a station may go without a heartbeat before its open runs may be taken
// over by another station.
const staleAfter = 2 * time.Minute

// BeginRun opens a run for the serial or, when the serial has an open run left by this station's
// earlier session (or by a station silent for two minutes), resumes it. An open run held by a live
// station is ErrRunBusy. An open run for another policy or firmware is closed as interrupted
// first.
func (s *Station) BeginRun(ctx context.Context, spec RunSpec) (*Run, error) {
	l := s.l
	var run *Run
	err := l.tx(ctx, func(t *sql.Tx) error {
		run = nil
		if l.d.name == "postgres" {
			// Serialise BeginRun per serial across stations.
			if _, err := t.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "provkit-run:"+spec.Serial); err != nil {
				return err
			}
		}
		now := l.us()
		var id, station, session, psha, fsha string
		var attempts, seq int
		err := t.QueryRowContext(ctx, l.q(`SELECT run_id, station, session, policy_sha256, firmware_sha256, attempts, next_seq FROM runs WHERE serial = ? AND open = 1`), spec.Serial).
			Scan(&id, &station, &session, &psha, &fsha, &attempts, &seq)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			if station != s.Name {
				var lastSeen sql.NullInt64
				var stopped sql.NullInt64
				err := t.QueryRowContext(ctx, l.q(`SELECT last_seen_us, stopped_us FROM stations WHERE name = ?`), station).Scan(&lastSeen, &stopped)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return err
				}
				if !stopped.Valid && lastSeen.Valid && now-lastSeen.Int64 < staleAfter.Microseconds() {
					return fmt.Errorf("%s: %w (station %q, run %s)", spec.Serial, ErrRunBusy, station, id)
				}
			}
			if psha == spec.PolicySHA256 && fsha == spec.FirmwareSHA256 {
				run = &Run{s: s, ID: id, Serial: spec.Serial, Attempt: attempts + 1, Resumed: true, spec: spec, Finished: map[string]bool{}, Evidence: map[string]json.RawMessage{}}
				if _, err := t.ExecContext(ctx, l.q(`UPDATE runs SET station = ?, session = ?, attempts = ? WHERE run_id = ?`), s.Name, s.Session, run.Attempt, id); err != nil {
					return err
				}
				rows, err := t.QueryContext(ctx, l.q(`SELECT step, evidence FROM events WHERE run_id = ? AND kind = ? AND ok = 1 ORDER BY seq`), id, EventStepFinished)
				if err != nil {
					return err
				}
				for rows.Next() {
					var st string
					var ev sql.NullString
					if err := rows.Scan(&st, &ev); err != nil {
						rows.Close()
						return err
					}
					run.Finished[st] = true
					if ev.Valid {
						run.Evidence[st] = json.RawMessage(ev.String)
					}
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
				return run.appendTx(ctx, t, Event{Kind: EventRunResumed, Detail: fmt.Sprintf("resumed after session %s of station %q stopped before the verdict", session, station)}, nil)
			}
			// Another policy or firmware: the old run ends as interrupted.
			old := &Run{s: s, ID: id, Serial: spec.Serial, Attempt: attempts, spec: RunSpec{Serial: spec.Serial, PolicySHA256: psha, FirmwareSHA256: fsha}}
			if err := old.verdictTx(ctx, t, Verdict{Verdict: VerdictInterrupted, Reasons: []string{"superseded: the station now runs another policy or firmware"}}); err != nil {
				return err
			}
		}
		run = &Run{s: s, ID: newID(), Serial: spec.Serial, Attempt: 1, spec: spec, Finished: map[string]bool{}, Evidence: map[string]json.RawMessage{}}
		if _, err := t.ExecContext(ctx, l.q(`INSERT INTO runs (run_id, serial, station, session, started_us, policy_sha256, firmware_sha256, attempts, next_seq, open)
			VALUES (?, ?, ?, ?, ?, ?, ?, 1, 1, 1)`), run.ID, spec.Serial, s.Name, s.Session, now, spec.PolicySHA256, spec.FirmwareSHA256); err != nil {
			return fmt.Errorf("opening a run for %s: %w", spec.Serial, err)
		}
		return run.appendTx(ctx, t, Event{Kind: EventRunStarted}, map[string]any{"policySha256": spec.PolicySHA256, "firmwareSha256": spec.FirmwareSHA256})
	})
	if err != nil {
		return nil, fmt.Errorf("beginning run for %s: %w", spec.Serial, err)
	}
	return run, nil
}

// appendTx appends a run event with the run's next sequence number, checking that this session
// still holds the run.
func (r *Run) appendTx(ctx context.Context, t *sql.Tx, e Event, evidence any) error {
	l := r.s.l
	var seq int
	var session string
	var open int
	if err := t.QueryRowContext(ctx, l.q(`SELECT next_seq, session, open FROM runs WHERE run_id = ?`), r.ID).Scan(&seq, &session, &open); err != nil {
		return fmt.Errorf("reading run %s: %w", r.ID, err)
	}
	if session != r.s.Session {
		return fmt.Errorf("run %s of %s: %w", r.ID, r.Serial, ErrRunLost)
	}
	if open != 1 {
		return fmt.Errorf("run %s of %s: %w", r.ID, r.Serial, ErrDuplicateVerdict)
	}
	res, err := t.ExecContext(ctx, l.q(`UPDATE runs SET next_seq = next_seq + 1 WHERE run_id = ? AND next_seq = ?`), r.ID, seq)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("run %s of %s: %w", r.ID, r.Serial, ErrRunLost)
	}
	e.Time = time.UnixMicro(l.us())
	e.Station, e.Session, e.Serial, e.RunID, e.Attempt, e.Seq = r.s.Name, r.s.Session, r.Serial, r.ID, r.Attempt, seq
	if err := l.insertEvent(ctx, t, e, evidence); err != nil {
		return err
	}
	state, step := "running", e.Step
	switch e.Kind {
	case EventVerdict:
		state, step = e.Detail, ""
	case EventStepFinished:
		state = "running"
	}
	_, err = t.ExecContext(ctx, l.q(`INSERT INTO devices (serial, station, run_id, state, step, step_started_us, present, left_after_verdict, updated_us)
		VALUES (?, ?, ?, ?, ?, ?, 1, 0, ?)
		ON CONFLICT (serial) DO UPDATE SET station = excluded.station, run_id = excluded.run_id, state = excluded.state, step = excluded.step,
		step_started_us = CASE WHEN excluded.step = devices.step AND devices.run_id = excluded.run_id THEN devices.step_started_us ELSE excluded.step_started_us END,
		updated_us = excluded.updated_us`),
		r.Serial, r.s.Name, r.ID, state, step, e.Time.UnixMicro(), e.Time.UnixMicro())
	return err
}

func (r *Run) append(ctx context.Context, e Event, evidence any) error {
	return r.s.l.tx(ctx, func(t *sql.Tx) error { return r.appendTx(ctx, t, e, evidence) })
}

// StepStarted records that a step began.
func (r *Run) StepStarted(ctx context.Context, step string) error {
	if err := r.append(ctx, Event{Kind: EventStepStarted, Step: step}, nil); err != nil {
		return fmt.Errorf("recording %s's step %s: %w", r.Serial, step, err)
	}
	return nil
}

// StepFinished records how a step ended and what it proved.
func (r *Run) StepFinished(ctx context.Context, step string, ok bool, detail string, evidence any) error {
	if err := r.append(ctx, Event{Kind: EventStepFinished, Step: step, OK: &ok, Detail: detail}, evidence); err != nil {
		return fmt.Errorf("recording %s's step %s: %w", r.Serial, step, err)
	}
	return nil
}

// Verdict is how a run ended.
type Verdict struct {
	Verdict string
	Reasons []string
	// Evidence is what the run proved (JSON-encodable): the check result, flashed digests.
	Evidence any
	// Attestation is a signed statement over the verdict, when the station makes one (JSON).
	Attestation json.RawMessage
}

// Finish records the run's verdict and closes it. A second verdict for the run is
// ErrDuplicateVerdict (the database refuses it).
func (r *Run) Finish(ctx context.Context, v Verdict) error {
	err := r.s.l.syncTx(ctx, func(t *sql.Tx) error { return r.verdictTx(ctx, t, v) })
	if err != nil {
		return fmt.Errorf("recording %s's verdict: %w", r.Serial, err)
	}
	return nil
}

func (r *Run) verdictTx(ctx context.Context, t *sql.Tx, v Verdict) error {
	l := r.s.l
	switch v.Verdict {
	case VerdictPass, VerdictFail, VerdictError, VerdictInterrupted:
	default:
		return fmt.Errorf("unknown verdict %q", v.Verdict)
	}
	if v.Reasons == nil {
		v.Reasons = []string{}
	}
	reasons, err := jsonText(v.Reasons)
	if err != nil {
		return err
	}
	ev, err := jsonText(v.Evidence)
	if err != nil {
		return err
	}
	att, err := jsonText(v.Attestation)
	if err != nil {
		return err
	}
	if r.s.Session != "" {
		// A superseded run is closed by the session that found it, which does not hold it.
		var session string
		if err := t.QueryRowContext(ctx, l.q(`SELECT session FROM runs WHERE run_id = ?`), r.ID).Scan(&session); err == nil && session != r.s.Session {
			if _, err := t.ExecContext(ctx, l.q(`UPDATE runs SET session = ?, station = ? WHERE run_id = ?`), r.s.Session, r.s.Name, r.ID); err != nil {
				return err
			}
		}
	}
	if err := r.appendTx(ctx, t, Event{Kind: EventVerdict, Detail: v.Verdict}, map[string]any{"verdict": v.Verdict, "reasons": v.Reasons}); err != nil {
		return err
	}
	now := l.us()
	_, err = t.ExecContext(ctx, l.q(`INSERT INTO verdicts (run_id, serial, station, at_us, verdict, policy_sha256, firmware_sha256, reasons, evidence, attestation)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, r.Serial, r.s.Name, now, v.Verdict, r.spec.PolicySHA256, r.spec.FirmwareSHA256, reasons, ev, att)
	if err != nil {
		if l.d.isUnique(err) {
			return ErrDuplicateVerdict
		}
		return err
	}
	res, err := t.ExecContext(ctx, l.q(`UPDATE runs SET open = 0 WHERE run_id = ? AND open = 1`), r.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrDuplicateVerdict
	}
	_, err = t.ExecContext(ctx, l.q(`UPDATE devices SET left_after_verdict = 0, last_verdict = ?, last_verdict_us = ? WHERE serial = ?`), v.Verdict, now, r.Serial)
	return err
}
