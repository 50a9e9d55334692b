package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Filter narrows what is read. Zero fields do not filter.
type Filter struct {
	Since   time.Time
	Station string
	Serial  string
	// Limit bounds the rows returned (0: no bound); the newest are kept.
	Limit int
	// NotPass keeps only verdicts other than pass (for verdicts only).
	NotPass bool
}

func (f Filter) where(timeCol string) (string, []any) { return f.whereAs("", timeCol) }

// whereAs is where with columns of the table aliased as prefix ("v.").
func (f Filter) whereAs(prefix, timeCol string) (string, []any) {
	var conds []string
	var args []any
	if !f.Since.IsZero() {
		conds = append(conds, prefix+timeCol+" >= ?")
		args = append(args, f.Since.UTC().UnixMicro())
	}
	if f.Station != "" {
		conds = append(conds, prefix+"station = ?")
		args = append(args, f.Station)
	}
	if f.Serial != "" {
		conds = append(conds, prefix+"serial = ?")
		args = append(args, f.Serial)
	}
	if f.NotPass {
		conds = append(conds, prefix+"verdict <> 'pass'")
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// VerdictRecord is one verdict as exported.
type VerdictRecord struct {
	RunID          string    `json:"runId"`
	Serial         string    `json:"serial"`
	Verdict        string    `json:"verdict"`
	Station        string    `json:"station"`
	Time           time.Time `json:"time"`
	PolicySHA256   string    `json:"policySha256"`
	FirmwareSHA256 string    `json:"firmwareSha256,omitempty"`
	Reasons        []string  `json:"reasons"`
	// FailedRules are the rules the reasons of a fail verdict name, each once.
	FailedRules []string        `json:"failedRules,omitempty"`
	Evidence    json.RawMessage `json:"evidence,omitempty"`
	Attestation json.RawMessage `json:"attestation,omitempty"`
}

// failedRules returns the rules named by a fail verdict's reasons, each once, in order.
func failedRules(verdict string, reasons []string) []string {
	if verdict != VerdictFail {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, r := range reasons {
		if rule := RuleOf(r); !seen[rule] {
			seen[rule] = true
			out = append(out, rule)
		}
	}
	return out
}

// Verdicts returns the verdicts matching f, oldest first.
func (l *Ledger) Verdicts(ctx context.Context, f Filter) ([]VerdictRecord, error) {
	w, args := f.where("at_us")
	q := `SELECT run_id, serial, verdict, station, at_us, policy_sha256, firmware_sha256, reasons, evidence, attestation FROM verdicts` + w + ` ORDER BY at_us DESC, run_id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := l.db.QueryContext(ctx, l.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("reading verdicts from %s: %w", l.where, err)
	}
	defer rows.Close()
	out := []VerdictRecord{}
	for rows.Next() {
		var v VerdictRecord
		var us int64
		var reasons string
		var ev, att sql.NullString
		if err := rows.Scan(&v.RunID, &v.Serial, &v.Verdict, &v.Station, &us, &v.PolicySHA256, &v.FirmwareSHA256, &reasons, &ev, &att); err != nil {
			return nil, fmt.Errorf("reading verdicts from %s: %w", l.where, err)
		}
		v.Time = time.UnixMicro(us).UTC()
		if err := json.Unmarshal([]byte(reasons), &v.Reasons); err != nil {
			return nil, fmt.Errorf("reading verdict of run %s: reasons: %w", v.RunID, err)
		}
		v.FailedRules = failedRules(v.Verdict, v.Reasons)
		if ev.Valid {
			v.Evidence = json.RawMessage(ev.String)
		}
		if att.Valid {
			v.Attestation = json.RawMessage(att.String)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Oldest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Events returns the events matching f, in the order they were recorded.
func (l *Ledger) Events(ctx context.Context, f Filter) ([]Event, error) {
	w, args := f.where("at_us")
	q := `SELECT id, at_us, station, session, serial, run_id, attempt, seq, kind, step, ok, detail, evidence FROM events` + w + ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := l.db.QueryContext(ctx, l.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("reading events from %s: %w", l.where, err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		var us int64
		var session, serial, run, step, detail, ev sql.NullString
		var attempt, seq, ok sql.NullInt64
		if err := rows.Scan(&e.ID, &us, &e.Station, &session, &serial, &run, &attempt, &seq, &e.Kind, &step, &ok, &detail, &ev); err != nil {
			return nil, fmt.Errorf("reading events from %s: %w", l.where, err)
		}
		e.Time = time.UnixMicro(us).UTC()
		e.Session, e.Serial, e.RunID, e.Step, e.Detail = session.String, serial.String, run.String, step.String, detail.String
		e.Attempt, e.Seq = int(attempt.Int64), int(seq.Int64)
		if ok.Valid {
			b := ok.Int64 == 1
			e.OK = &b
		}
		if ev.Valid {
			e.Evidence = json.RawMessage(ev.String)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// DeviceState is the derived current state of one phone.
type DeviceState struct {
	Serial        string     `json:"serial"`
	Station       string     `json:"station"`
	RunID         string     `json:"runId,omitempty"`
	State         string     `json:"state"` // seen, running, or the last verdict
	Step          string     `json:"step,omitempty"`
	StepStarted   *time.Time `json:"stepStarted,omitempty"`
	Present       bool       `json:"present"`
	LastVerdict   string     `json:"lastVerdict,omitempty"`
	LastVerdictAt *time.Time `json:"lastVerdictAt,omitempty"`
	Updated       time.Time  `json:"updated"`
}

// Devices returns the current state of the phones matching f (Since filters on the last update).
func (l *Ledger) Devices(ctx context.Context, f Filter) ([]DeviceState, error) {
	w, args := f.where("updated_us")
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT serial, station, run_id, state, step, step_started_us, present, last_verdict, last_verdict_us, updated_us FROM devices`+w+` ORDER BY serial`), args...)
	if err != nil {
		return nil, fmt.Errorf("reading devices from %s: %w", l.where, err)
	}
	defer rows.Close()
	out := []DeviceState{}
	for rows.Next() {
		var d DeviceState
		var run, lv sql.NullString
		var sst, lvt sql.NullInt64
		var present int
		var up int64
		if err := rows.Scan(&d.Serial, &d.Station, &run, &d.State, &d.Step, &sst, &present, &lv, &lvt, &up); err != nil {
			return nil, fmt.Errorf("reading devices from %s: %w", l.where, err)
		}
		d.RunID, d.LastVerdict, d.Present, d.Updated = run.String, lv.String, present == 1, time.UnixMicro(up).UTC()
		if sst.Valid {
			t := time.UnixMicro(sst.Int64).UTC()
			d.StepStarted = &t
		}
		if lvt.Valid {
			t := time.UnixMicro(lvt.Int64).UTC()
			d.LastVerdictAt = &t
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// StationState is one station as last recorded.
type StationState struct {
	Name           string     `json:"name"`
	Session        string     `json:"session"`
	Started        time.Time  `json:"started"`
	LastSeen       time.Time  `json:"lastSeen"`
	Stopped        *time.Time `json:"stopped,omitempty"`
	Host           string     `json:"host"`
	PID            int        `json:"pid"`
	Version        string     `json:"version"`
	PolicySHA256   string     `json:"policySha256"`
	FirmwareSHA256 string     `json:"firmwareSha256,omitempty"`
}

// Stations returns every station known to the ledger.
func (l *Ledger) Stations(ctx context.Context) ([]StationState, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT name, session, started_us, last_seen_us, stopped_us, host, pid, version, policy_sha256, firmware_sha256 FROM stations ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("reading stations from %s: %w", l.where, err)
	}
	defer rows.Close()
	out := []StationState{}
	for rows.Next() {
		var s StationState
		var st, ls int64
		var stop sql.NullInt64
		if err := rows.Scan(&s.Name, &s.Session, &st, &ls, &stop, &s.Host, &s.PID, &s.Version, &s.PolicySHA256, &s.FirmwareSHA256); err != nil {
			return nil, err
		}
		s.Started, s.LastSeen = time.UnixMicro(st).UTC(), time.UnixMicro(ls).UTC()
		if stop.Valid {
			t := time.UnixMicro(stop.Int64).UTC()
			s.Stopped = &t
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// StepDuration is one finished step's duration, for metrics.
type StepDuration struct {
	Station  string
	Step     string
	OK       bool
	Duration time.Duration
}

// StepDurations pairs step-started and step-finished events of the same run attempt recorded
// after the event afterID; it returns the durations and the last event id it saw.
func (l *Ledger) StepDurations(ctx context.Context, afterID int64) ([]StepDuration, int64, error) {
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT f.id, f.station, f.step, f.ok, f.at_us - s.at_us FROM events f
		JOIN events s ON s.run_id = f.run_id AND s.attempt = f.attempt AND s.step = f.step AND s.kind = ?
		WHERE f.kind = ? AND f.id > ? ORDER BY f.id`), EventStepStarted, EventStepFinished, afterID)
	if err != nil {
		return nil, afterID, err
	}
	defer rows.Close()
	var out []StepDuration
	last := afterID
	for rows.Next() {
		var d StepDuration
		var id, us int64
		var ok sql.NullInt64
		if err := rows.Scan(&id, &d.Station, &d.Step, &ok, &us); err != nil {
			return nil, afterID, err
		}
		d.OK, d.Duration = ok.Int64 == 1, time.Duration(us)*time.Microsecond
		out = append(out, d)
		if id > last {
			last = id
		}
	}
	return out, last, rows.Err()
}

// Stats summarises verdicts.
type Stats struct {
	Since      *time.Time      `json:"since,omitempty"`
	Verdicts   int             `json:"verdicts"`
	Pass       int             `json:"pass"`
	Fail       int             `json:"fail"`
	Error      int             `json:"error"`
	Interrupt  int             `json:"interrupted"`
	PassRate   float64         `json:"passRate"` // pass / (pass + fail + error)
	PerHour    []HourCount     `json:"perHour"`
	ByRule     []RuleCount     `json:"failuresByRule"`
	ByStation  []StationCount  `json:"perStation"`
	InProgress int             `json:"inProgress"`
	Latest     []VerdictRecord `json:"-"`
}

// HourCount is the verdicts of one hour (UTC).
type HourCount struct {
	Hour  time.Time `json:"hour"`
	Total int       `json:"total"`
	Pass  int       `json:"pass"`
}

// RuleCount is how many verdicts a rule failed.
type RuleCount struct {
	Rule  string `json:"rule"`
	Count int    `json:"count"`
}

// StationCount is one station's verdicts.
type StationCount struct {
	Station string  `json:"station"`
	Total   int     `json:"total"`
	Pass    int     `json:"pass"`
	Fail    int     `json:"fail"`
	Error   int     `json:"error"`
	Rate    float64 `json:"perHour"` // verdicts per hour over the station's span of verdicts
}

// RuleOf returns the rule a reason names: the text before the first " (" or ": ".
func RuleOf(reason string) string {
	end := len(reason)
	for _, sep := range []string{" (", ": "} {
		if i := strings.Index(reason, sep); i >= 0 && i < end {
			end = i
		}
	}
	return reason[:end]
}

// ComputeStats summarises vs (as returned by Verdicts).
func ComputeStats(vs []VerdictRecord) Stats {
	s := Stats{PerHour: []HourCount{}, ByRule: []RuleCount{}, ByStation: []StationCount{}}
	hours := map[int64]*HourCount{}
	rules := map[string]int{}
	type span struct {
		c          StationCount
		first, end time.Time
	}
	stations := map[string]*span{}
	for _, v := range vs {
		s.Verdicts++
		h := v.Time.Truncate(time.Hour)
		hc := hours[h.Unix()]
		if hc == nil {
			hc = &HourCount{Hour: h}
			hours[h.Unix()] = hc
		}
		hc.Total++
		st := stations[v.Station]
		if st == nil {
			st = &span{c: StationCount{Station: v.Station}, first: v.Time}
			stations[v.Station] = st
		}
		st.c.Total++
		st.end = v.Time
		switch v.Verdict {
		case VerdictPass:
			s.Pass++
			hc.Pass++
			st.c.Pass++
		case VerdictFail:
			s.Fail++
			st.c.Fail++
			seen := map[string]bool{}
			for _, r := range v.Reasons {
				if rule := RuleOf(r); !seen[rule] {
					seen[rule] = true
					rules[rule]++
				}
			}
		case VerdictError:
			s.Error++
			st.c.Error++
		case VerdictInterrupted:
			s.Interrupt++
		}
	}
	if n := s.Pass + s.Fail + s.Error; n > 0 {
		s.PassRate = float64(s.Pass) / float64(n)
	}
	for _, h := range hours {
		s.PerHour = append(s.PerHour, *h)
	}
	sort.Slice(s.PerHour, func(i, j int) bool { return s.PerHour[i].Hour.Before(s.PerHour[j].Hour) })
	for r, n := range rules {
		s.ByRule = append(s.ByRule, RuleCount{Rule: r, Count: n})
	}
	sort.Slice(s.ByRule, func(i, j int) bool {
		if s.ByRule[i].Count != s.ByRule[j].Count {
			return s.ByRule[i].Count > s.ByRule[j].Count
		}
		return s.ByRule[i].Rule < s.ByRule[j].Rule
	})
	for _, st := range stations {
		hrs := st.end.Sub(st.first).Hours()
		if hrs < 1.0/60 {
			hrs = 1.0 / 60 // a burst within a minute is not an infinite rate
		}
		st.c.Rate = float64(st.c.Total) / hrs
		s.ByStation = append(s.ByStation, st.c)
	}
	sort.Slice(s.ByStation, func(i, j int) bool { return s.ByStation[i].Station < s.ByStation[j].Station })
	return s
}

// LastEventID returns the id of the newest event (0 when there is none): a cheap way to tell
// whether anything changed.
func (l *Ledger) LastEventID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	if err := l.db.QueryRowContext(ctx, `SELECT MAX(id) FROM events`).Scan(&id); err != nil {
		return 0, fmt.Errorf("reading %s: %w", l.where, err)
	}
	return id.Int64, nil
}

// VerdictCount is how many verdicts of one kind a station recorded.
type VerdictCount struct {
	Station string
	Verdict string
	Count   int64
}

// VerdictCounts counts verdicts per station and verdict, since f.Since.
func (l *Ledger) VerdictCounts(ctx context.Context, f Filter) ([]VerdictCount, error) {
	w, args := f.where("at_us")
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT station, verdict, COUNT(*) FROM verdicts`+w+` GROUP BY station, verdict ORDER BY station, verdict`), args...)
	if err != nil {
		return nil, fmt.Errorf("counting verdicts in %s: %w", l.where, err)
	}
	defer rows.Close()
	var out []VerdictCount
	for rows.Next() {
		var c VerdictCount
		if err := rows.Scan(&c.Station, &c.Verdict, &c.Count); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Timing is where the time of finished runs went: in the steps (flashing, booting, checking) or
// in the station itself (identifying the phone, reading and writing the ledger, scheduling).
type Timing struct {
	Runs int `json:"runs"`
	// RunSeconds adds up each run from its start to its verdict.
	RunSeconds float64 `json:"runSeconds"`
	// StepSeconds adds up the steps of those runs, from step-started to step-finished.
	StepSeconds float64 `json:"stepSeconds"`
	// Overhead is (RunSeconds - StepSeconds) / RunSeconds: the station's own share.
	Overhead float64 `json:"overheadFraction"`
	// PerStep adds up the seconds of each step.
	PerStep map[string]float64 `json:"perStepSeconds"`
}

// Timing measures the runs whose verdict matches f, resumed runs excepted (the time a station
// was down would count as its overhead).
func (l *Ledger) Timing(ctx context.Context, f Filter) (Timing, error) {
	w, args := f.whereAs("v.", "at_us")
	cond := " WHERE r.attempts = 1"
	if w != "" {
		cond = w + " AND r.attempts = 1"
	}
	t := Timing{PerStep: map[string]float64{}}
	var runUS sql.NullInt64
	var n int
	err := l.db.QueryRowContext(ctx, l.q(`SELECT COUNT(*), SUM(v.at_us - r.started_us) FROM verdicts v JOIN runs r ON r.run_id = v.run_id`+cond), args...).Scan(&n, &runUS)
	if err != nil {
		return t, fmt.Errorf("measuring runs in %s: %w", l.where, err)
	}
	t.Runs, t.RunSeconds = n, float64(runUS.Int64)/1e6
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT s.step, SUM(e.at_us - s.at_us) FROM events e
		JOIN events s ON s.run_id = e.run_id AND s.attempt = e.attempt AND s.step = e.step AND s.kind = 'step-started'
		JOIN verdicts v ON v.run_id = e.run_id JOIN runs r ON r.run_id = e.run_id`+cond+` AND e.kind = 'step-finished' GROUP BY s.step`), args...)
	if err != nil {
		return t, fmt.Errorf("measuring steps in %s: %w", l.where, err)
	}
	defer rows.Close()
	for rows.Next() {
		var step string
		var us int64
		if err := rows.Scan(&step, &us); err != nil {
			return t, err
		}
		t.PerStep[step] = float64(us) / 1e6
		t.StepSeconds += float64(us) / 1e6
	}
	if t.RunSeconds > 0 {
		t.Overhead = (t.RunSeconds - t.StepSeconds) / t.RunSeconds
	}
	return t, rows.Err()
}

// HourCounts counts the verdicts since f.Since per hour (UTC), oldest first.
func (l *Ledger) HourCounts(ctx context.Context, f Filter) ([]HourCount, error) {
	w, args := f.where("at_us")
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT at_us / 3600000000 AS h, COUNT(*), SUM(CASE WHEN verdict = 'pass' THEN 1 ELSE 0 END)
		FROM verdicts`+w+` GROUP BY at_us / 3600000000 ORDER BY h`), args...)
	if err != nil {
		return nil, fmt.Errorf("counting verdicts per hour in %s: %w", l.where, err)
	}
	defer rows.Close()
	out := []HourCount{}
	for rows.Next() {
		var h int64
		var c HourCount
		if err := rows.Scan(&h, &c.Total, &c.Pass); err != nil {
			return nil, err
		}
		c.Hour = time.Unix(h*3600, 0).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}
