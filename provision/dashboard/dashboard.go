package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/provkit/provkit/provision/ledger"
)

//go:embed static/*
var static embed.FS

//go:embed page.html
var pageHTML string

var page = template.Must(template.New("page").Parse(pageHTML))

// Options configure a dashboard.
type Options struct {
	// Poll is how often the ledger is looked at for new events (default 500ms).
	Poll time.Duration
	// StaleAfter is how long a station may be silent before it is shown as stale (default 1m).
	StaleAfter time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// Server serves the dashboard of one ledger.
type Server struct {
	l    *ledger.Ledger
	o    Options
	mux  *http.ServeMux
	reg  *prometheus.Registry
	hist *prometheus.HistogramVec

	histMu   sync.Mutex
	histLast int64

	// The last summary, shared by the event streams of every open page.
	cacheMu  sync.Mutex
	cacheID  int64
	cacheAt  time.Time
	cacheSum []byte
}

// cached returns the summary as JSON for the ledger's newest event id, computed at most once a
// second whatever the number of pages open.
func (s *Server) cached(ctx context.Context, id int64) ([]byte, error) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.cacheSum != nil && s.cacheID == id && time.Since(s.cacheAt) < time.Second {
		return s.cacheSum, nil
	}
	sum, err := s.Summarize(ctx)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(sum)
	if err != nil {
		return nil, err
	}
	s.cacheID, s.cacheAt, s.cacheSum = id, time.Now(), b
	return b, nil
}

// New returns a dashboard over l.
func New(l *ledger.Ledger, o Options) *Server {
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{l: l, o: o, mux: http.NewServeMux(), reg: prometheus.NewRegistry()}
	s.hist = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "provkit_line_step_duration_seconds",
		Help:    "Duration of the station steps recorded in the ledger since the dashboard started, by station, step and outcome.",
		Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200},
	}, []string{"station", "step", "ok"})
	// The histogram is fed and collected by the collector, at scrape time.
	s.reg.MustRegister(&collector{s: s})
	sub, _ := fs.Sub(static, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServer(http.FS(sub))))
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /api/summary", s.summaryJSON)
	s.mux.HandleFunc("GET /api/device", s.device)
	s.mux.HandleFunc("GET /api/events", s.events)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	// Step durations count from the dashboard's start (a histogram cannot be rebuilt from a
	// year of ledger at each start).
	if id, err := l.LastEventID(context.Background()); err == nil {
		s.histLast = id
	}
	return s
}

// ServeHTTP serves the dashboard: read-only (GET and HEAD only), with headers that keep the page
// from being framed or loading anything from elsewhere.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "the dashboard is read-only", http.StatusMethodNotAllowed)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Summary is what the page shows; /api/summary and the event stream send it.
type Summary struct {
	Generated  time.Time          `json:"generated"`
	LastEvent  int64              `json:"lastEvent"`
	Stations   []StationView      `json:"stations"`
	InProgress []DeviceView       `json:"inProgress"`
	Today      Counts             `json:"today"`
	LastHour   Counts             `json:"lastHour"`
	PerHour    []ledger.HourCount `json:"perHour"`
	Failures   []FailureView      `json:"latestFailures"`
}

// Counts are verdict counts.
type Counts struct {
	Pass        int     `json:"pass"`
	Fail        int     `json:"fail"`
	Error       int     `json:"error"`
	Interrupted int     `json:"interrupted"`
	Total       int     `json:"total"`
	PassRate    float64 `json:"passRate"`
}

// StationView is one station on the page.
type StationView struct {
	ledger.StationState
	Status     string `json:"status"` // running, stale, stopped
	InProgress int    `json:"inProgress"`
	Today      Counts `json:"today"`
}

// DeviceView is one phone in progress.
type DeviceView struct {
	Serial  string  `json:"serial"`
	Station string  `json:"station"`
	Step    string  `json:"step"`
	Elapsed float64 `json:"elapsedSeconds"`
}

// FailureView is one recent non-pass verdict.
type FailureView struct {
	Serial  string    `json:"serial"`
	Station string    `json:"station"`
	Verdict string    `json:"verdict"`
	Time    time.Time `json:"time"`
	Reasons []string  `json:"reasons"`
}

func add(c *Counts, verdict string, n int) {
	c.Total += n
	switch verdict {
	case ledger.VerdictPass:
		c.Pass += n
	case ledger.VerdictFail:
		c.Fail += n
	case ledger.VerdictError:
		c.Error += n
	default:
		c.Interrupted += n
	}
	if d := c.Pass + c.Fail + c.Error; d > 0 {
		c.PassRate = float64(c.Pass) / float64(d)
	}
}

// Summarize reads the ledger into a Summary.
func (s *Server) Summarize(ctx context.Context) (*Summary, error) {
	now := s.o.Now().UTC()
	last, err := s.l.LastEventID(ctx)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Generated: now, LastEvent: last, Stations: []StationView{}, InProgress: []DeviceView{}, Failures: []FailureView{}, PerHour: []ledger.HourCount{}}
	// Counted by the database: a plant records thousands of phones a day.
	day := now.Add(-24 * time.Hour)
	counts, err := s.l.VerdictCounts(ctx, ledger.Filter{Since: day})
	if err != nil {
		return nil, err
	}
	per := map[string]*Counts{}
	for _, c := range counts {
		if per[c.Station] == nil {
			per[c.Station] = &Counts{}
		}
		add(&sum.Today, c.Verdict, int(c.Count))
		add(per[c.Station], c.Verdict, int(c.Count))
	}
	hour, err := s.l.VerdictCounts(ctx, ledger.Filter{Since: now.Add(-time.Hour)})
	if err != nil {
		return nil, err
	}
	for _, c := range hour {
		add(&sum.LastHour, c.Verdict, int(c.Count))
	}
	if sum.PerHour, err = s.l.HourCounts(ctx, ledger.Filter{Since: day}); err != nil {
		return nil, err
	}
	fails, err := s.l.Verdicts(ctx, ledger.Filter{Since: day, NotPass: true, Limit: 20})
	if err != nil {
		return nil, err
	}
	for i := len(fails) - 1; i >= 0; i-- {
		v := fails[i]
		sum.Failures = append(sum.Failures, FailureView{Serial: v.Serial, Station: v.Station, Verdict: v.Verdict, Time: v.Time, Reasons: v.Reasons})
	}
	devs, err := s.l.Devices(ctx, ledger.Filter{})
	if err != nil {
		return nil, err
	}
	busy := map[string]int{}
	for _, d := range devs {
		if d.State != "running" {
			continue
		}
		busy[d.Station]++
		dv := DeviceView{Serial: d.Serial, Station: d.Station, Step: d.Step}
		if d.StepStarted != nil {
			dv.Elapsed = now.Sub(*d.StepStarted).Seconds()
		}
		sum.InProgress = append(sum.InProgress, dv)
	}
	sort.Slice(sum.InProgress, func(i, j int) bool { return sum.InProgress[i].Serial < sum.InProgress[j].Serial })
	sts, err := s.l.Stations(ctx)
	if err != nil {
		return nil, err
	}
	for _, st := range sts {
		v := StationView{StationState: st, Status: "running", InProgress: busy[st.Name]}
		switch {
		case st.Stopped != nil:
			v.Status = "stopped"
		case now.Sub(st.LastSeen) > s.o.StaleAfter:
			v.Status = "stale"
		}
		if c := per[st.Name]; c != nil {
			v.Today = *c
		}
		sum.Stations = append(sum.Stations, v)
	}
	return sum, nil
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	sum, err := s.Summarize(r.Context())
	if err != nil {
		http.Error(w, "reading the ledger: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	b, _ := json.Marshal(sum)
	_ = page.Execute(w, map[string]any{"Summary": sum, "Ledger": s.l.Where(), "Kind": s.l.Kind(), "Initial": string(b)})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) summaryJSON(w http.ResponseWriter, r *http.Request) {
	sum, err := s.Summarize(r.Context())
	if err != nil {
		http.Error(w, "reading the ledger: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, sum)
}

// History is one phone's record: its verdicts (with evidence), its current state and its events.
type History struct {
	Serial   string                 `json:"serial"`
	Verdicts []ledger.VerdictRecord `json:"verdicts"`
	Events   []ledger.Event         `json:"events"`
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) {
	serial := strings.TrimSpace(r.URL.Query().Get("serial"))
	if serial == "" || len(serial) > 128 {
		http.Error(w, "give ?serial=<serial> (at most 128 bytes)", http.StatusBadRequest)
		return
	}
	vs, err := s.l.Verdicts(r.Context(), ledger.Filter{Serial: serial, Limit: 200})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	evs, err := s.l.Events(r.Context(), ledger.Filter{Serial: serial, Limit: 1000})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, History{Serial: serial, Verdicts: vs, Events: evs})
}

// events streams the summary as server-sent events whenever the ledger changes (and every 15s,
// so elapsed times move and proxies keep the connection).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()
	ctx := r.Context()
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	var sent int64 = -1
	lastSend := time.Time{}
	for {
		id, err := s.l.LastEventID(ctx)
		if err == nil && (id != sent || time.Since(lastSend) > 15*time.Second) {
			b, err := s.cached(ctx, id)
			if err == nil {
				if _, err := fmt.Fprintf(w, "event: summary\nid: %d\ndata: %s\n\n", id, b); err != nil {
					return
				}
				fl.Flush()
				sent, lastSend = id, time.Now()
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// collector exports the ledger's counts at each scrape.
type collector struct{ s *Server }

var (
	verdictsDesc   = prometheus.NewDesc("provkit_line_verdicts_total", "Verdicts recorded in the ledger, by station and verdict.", []string{"station", "verdict"}, nil)
	processedDesc  = prometheus.NewDesc("provkit_line_devices_processed_total", "Phones that got a verdict, by station.", []string{"station"}, nil)
	inProgressDesc = prometheus.NewDesc("provkit_line_devices_in_progress", "Phones being processed now, by station.", []string{"station"}, nil)
	stationUpDesc  = prometheus.NewDesc("provkit_line_station_up", "1 if the station is running and heard from recently, else 0.", []string{"station"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- verdictsDesc
	ch <- processedDesc
	ch <- inProgressDesc
	ch <- stationUpDesc
	c.s.hist.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := c.s
	counts, err := s.l.VerdictCounts(ctx, ledger.Filter{})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(verdictsDesc, err)
		return
	}
	processed := map[string]int64{}
	for _, vc := range counts {
		ch <- prometheus.MustNewConstMetric(verdictsDesc, prometheus.CounterValue, float64(vc.Count), vc.Station, vc.Verdict)
		processed[vc.Station] += vc.Count
	}
	for st, n := range processed {
		ch <- prometheus.MustNewConstMetric(processedDesc, prometheus.CounterValue, float64(n), st)
	}
	sum, err := s.Summarize(ctx)
	if err == nil {
		for _, st := range sum.Stations {
			up := 0.0
			if st.Status == "running" {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(stationUpDesc, prometheus.GaugeValue, up, st.Name)
			ch <- prometheus.MustNewConstMetric(inProgressDesc, prometheus.GaugeValue, float64(st.InProgress), st.Name)
		}
	}
	s.histMu.Lock()
	ds, last, err := s.l.StepDurations(ctx, s.histLast)
	if err == nil {
		s.histLast = last
		for _, d := range ds {
			s.hist.WithLabelValues(d.Station, d.Step, fmt.Sprint(d.OK)).Observe(d.Duration.Seconds())
		}
	}
	s.hist.Collect(ch)
	s.histMu.Unlock()
}
