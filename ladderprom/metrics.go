package ladderprom

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// Options configures [New]. The zero value is the documented default of
// every field.
type Options struct {
	// Namespace prefixes every metric name. The default is "ladder".
	Namespace string
	// Buckets are the latency histogram's buckets, in seconds. The
	// default runs from 100 µs to 2.5 s.
	Buckets []float64
	// ConstLabels are added to every metric, e.g. the service's name.
	ConstLabels prometheus.Labels
	// Clock is the clock for the time until an open breaker's next probe;
	// give it the router's ([router.Config].Clock). Nil means clock.Real.
	Clock clock.Clock
}

// Metrics turns a ladder's answers, events and state into Prometheus
// metrics. It is safe for concurrent use; the answer path takes no lock
// of its own, but for the first answer of a new version of a tier when no
// router is watched.
type Metrics struct {
	predictions *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	falls       *prometheus.CounterVec
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	cacheStale  prometheus.Counter
	cacheAge    prometheus.Histogram
	info        *infoCollector
	inFlight    prometheus.Gauge
	degraded    prometheus.Gauge
	transitions *prometheus.CounterVec
	switches    *prometheus.CounterVec

	reg    prometheus.Registerer
	now    func() time.Time
	ns     string
	consts prometheus.Labels
	w      atomic.Pointer[watched]
}

// watched is what Watch learns about a router: its rungs and their
// pre-resolved metrics, so the answer path does no label lookups.
type watched struct {
	r      *router.Router
	rungs  []rungMetrics
	byName map[string]int
}

type rungMetrics struct {
	name             string
	ok, degraded     prometheus.Counter
	duration         prometheus.Observer
	tried, succeeded atomic.Int64
}

// New registers the metrics with reg and returns them. It returns reg's
// error when a metric is already registered.
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("ladderprom: New: nil Registerer")
	}
	ns := opts.Namespace
	if ns == "" {
		ns = "ladder"
	}
	buckets := opts.Buckets
	if buckets == nil {
		buckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	}
	c := opts.ConstLabels
	m := &Metrics{reg: reg, ns: ns, consts: c, now: clock.Or(opts.Clock).Now}
	m.predictions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "predictions_total", ConstLabels: c,
		Help: "Predictions by serving rung and outcome (ok, degraded, invalid_input, no_answer, deadline_exceeded, canceled, error)."}, []string{"tier", "outcome"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "prediction_duration_seconds", ConstLabels: c, Buckets: buckets,
		Help: "Latency of served predictions through the ladder, by serving rung."}, []string{"tier"})
	m.falls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "falls_total", ConstLabels: c,
		Help: "Falls from a rung to the next, by rung and reason."}, []string{"tier", "reason"})
	m.cacheHits = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "cache_hits_total", ConstLabels: c,
		Help: "Answers served from the last-good cache."})
	m.cacheMisses = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "cache_misses_total", ConstLabels: c,
		Help: "Cache rungs tried that held no answer for the input."})
	m.cacheStale = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "cache_too_stale_total", ConstLabels: c,
		Help: "Cached answers refused as older than the request accepts."})
	m.cacheAge = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "cache_age_seconds", ConstLabels: c,
		Buckets: []float64{.1, .5, 1, 5, 10, 30, 60, 300, 900, 3600},
		Help:    "Age of the cached answers served."})
	m.info = &infoCollector{w: &m.w, shown: map[string]string{}, told: map[string]bool{},
		desc: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "model_info"),
			"1 for the model version each tier serves now.", []string{"tier", "version"}, c)}
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "in_flight_requests", ConstLabels: c,
		Help: "Prediction requests in progress."})
	m.degraded = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "degraded", ConstLabels: c,
		Help: "1 while answers come from below the first rung or no rung answers; 0 once the first rung serves."})
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "breaker_transitions_total", ConstLabels: c,
		Help: "Circuit breaker state changes, by tier and new state."}, []string{"tier", "to"})
	m.switches = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "switches_total", ConstLabels: c,
		Help: "Changes of the rung serving traffic."}, []string{"from", "to"})
	for _, col := range []prometheus.Collector{m.predictions, m.duration, m.falls, m.cacheHits, m.cacheMisses, m.cacheStale,
		m.cacheAge, m.info, m.inFlight, m.degraded, m.transitions, m.switches} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Watch registers the metrics read from r at scrape time (breaker states,
// time to the next probe, success ratios, estimated availability) and
// prepares the per-rung metrics of r's answers. Call it once.
func (m *Metrics) Watch(r *router.Router) error {
	if r == nil {
		return errors.New("ladderprom: Watch: nil router")
	}
	names := r.Rungs()
	w := &watched{r: r, rungs: make([]rungMetrics, len(names)), byName: map[string]int{}}
	for i, name := range names {
		g := &w.rungs[i]
		g.name = name
		g.ok = m.predictions.WithLabelValues(name, "ok")
		g.degraded = m.predictions.WithLabelValues(name, "degraded")
		g.duration = m.duration.WithLabelValues(name)
		w.byName[name] = i
	}
	if !m.w.CompareAndSwap(nil, w) {
		return errors.New("ladderprom: Watch: already watching a router")
	}
	col := &stateCollector{m: m, w: w, last: make([]float64, len(names)), prev: make([][2]int64, len(names))}
	for i := range col.last {
		col.last[i] = 1
	}
	col.state = prometheus.NewDesc(prometheus.BuildFQName(m.ns, "", "breaker_state"),
		"1 for the breaker's current state of each model tier, 0 for the others.", []string{"tier", "state"}, m.consts)
	col.probe = prometheus.NewDesc(prometheus.BuildFQName(m.ns, "", "breaker_next_probe_seconds"),
		"Seconds until an open breaker lets a probe through; 0 when not open.", []string{"tier"}, m.consts)
	col.ratio = prometheus.NewDesc(prometheus.BuildFQName(m.ns, "", "rung_success_ratio"),
		"Each rung's share of successful tries since the previous scrape; the previous value when it was not tried, 1 at first.", []string{"tier"}, m.consts)
	col.avail = prometheus.NewDesc(prometheus.BuildFQName(m.ns, "", "availability_ratio"),
		"The ladder's estimated availability, 1 - prod(1 - r_i) over the rungs' success ratios.", nil, m.consts)
	col.condition = prometheus.NewDesc(prometheus.BuildFQName(m.ns, "", "tier_condition"),
		"1 for each model tier's current condition (healthy, loading, unhealthy, breaker-open, reload-failed), 0 for the others.",
		[]string{"tier", "condition"}, m.consts)
	col.probes = prometheus.NewDesc(prometheus.BuildFQName(m.ns, "", "probes_total"),
		"Canary probes of each model tier, by result (passed, failed).", []string{"tier", "result"}, m.consts)
	col.reloads = prometheus.NewDesc(prometheus.BuildFQName(m.ns, "", "reloads_total"),
		"Versions of each model tier swapped in (accepted), refused by validation (rejected) and rolled back (rolled_back).",
		[]string{"tier", "outcome"}, m.consts)
	return m.reg.Register(col)
}

// OnEvent records breaker transitions, switches of the serving rung, and
// the version a load, reload or rollback leaves serving. Pass it as
// router.Config.OnEvent.
func (m *Metrics) OnEvent(e router.Event) {
	switch e.Kind {
	case router.Reloaded, router.RolledBack:
		if e.Version != "" {
			m.info.serving(e.Tier, e.Version, true)
		}
	case router.BreakerChanged:
		m.transitions.WithLabelValues(e.Tier, e.Breaker.To.String()).Inc()
	case router.Switched:
		m.switches.WithLabelValues(e.From, e.To).Inc()
	}
}

// Started counts a prediction request in flight.
func (m *Metrics) Started() { m.inFlight.Inc() }

// Finished records a prediction's outcome: the answer, or the error it
// failed with, and ends the request started by [Metrics.Started]. It is
// the second half of ladderhttp.Observer; call it yourself for
// predictions that do not go through the HTTP handler.
func (m *Metrics) Finished(a router.Answer, err error, _ time.Duration) {
	m.inFlight.Dec()
	m.Observe(a, err)
}

// Observe records a prediction's outcome without touching the in-flight
// gauge.
func (m *Metrics) Observe(a router.Answer, err error) {
	w := m.w.Load()
	falls := a.Fell
	if err != nil {
		var na *router.NoAnswerError
		if errors.As(err, &na) {
			falls = na.Falls
		}
	}
	for _, f := range falls {
		reason := string(f.Outcome)
		if f.Outcome == router.NotAccepted {
			continue
		}
		m.falls.WithLabelValues(f.Tier, reason).Inc()
		switch reason {
		case string(router.NotCached):
			m.cacheMisses.Inc()
		case string(router.TooStale):
			m.cacheStale.Inc()
		}
		if w != nil && f.Position >= 0 && f.Position < len(w.rungs) {
			w.rungs[f.Position].tried.Add(1)
		}
	}
	if err != nil {
		m.predictions.WithLabelValues("none", outcome(err)).Inc()
		if errors.Is(err, router.ErrNoAnswer) {
			m.degraded.Set(1)
		}
		return
	}
	if a.Degraded {
		m.degraded.Set(1)
	} else {
		m.degraded.Set(0)
	}
	if a.Kind == router.KindCache {
		m.cacheHits.Inc()
		m.cacheAge.Observe(a.Age.Seconds())
	}
	if w == nil || a.Position < 0 || a.Position >= len(w.rungs) || w.rungs[a.Position].name != a.Tier {
		o := "ok"
		if a.Degraded {
			o = "degraded"
		}
		m.predictions.WithLabelValues(a.Tier, o).Inc()
		m.duration.WithLabelValues(a.Tier).Observe(a.Latency.Seconds())
		if a.Version != "" && a.Kind == router.KindModel {
			m.info.served(a.Tier, a.Version)
		}
		return
	}
	g := &w.rungs[a.Position]
	if a.Degraded {
		g.degraded.Inc()
	} else {
		g.ok.Inc()
	}
	g.duration.Observe(a.Latency.Seconds())
	g.tried.Add(1)
	g.succeeded.Add(1)
	// The version of a watched router's tiers is read at scrape time.
}

// outcome labels the error Predict returned.
func outcome(err error) string {
	switch {
	case errors.Is(err, router.ErrNoAnswer):
		return "no_answer"
	case errors.Is(err, tensor.ErrInvalidInput):
		return "invalid_input"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

// stateCollector reads the router's state at scrape time.
type stateCollector struct {
	m                          *Metrics
	w                          *watched
	state, probe, ratio, avail *prometheus.Desc
	condition, probes, reloads *prometheus.Desc

	mu   sync.Mutex
	prev [][2]int64 // tried, succeeded at the previous scrape
	last []float64  // success ratio at the previous scrape
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.probe
	ch <- c.ratio
	ch <- c.avail
	ch <- c.condition
	ch <- c.probes
	ch <- c.reloads
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.m.now()
	gauge := func(d *prometheus.Desc, on bool, labels ...string) {
		v := 0.0
		if on {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, n uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), labels...)
	}
	for name, th := range c.w.r.Health() {
		for _, s := range []policy.State{policy.Closed, policy.Open, policy.HalfOpen} {
			gauge(c.state, th.State == s, name, s.String())
		}
		next := 0.0
		if !th.RetryAfter.IsZero() {
			next = math.Max(0, th.RetryAfter.Sub(now).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(c.probe, prometheus.GaugeValue, next, name)
		for _, cond := range []router.Condition{router.Healthy, router.Loading, router.Unhealthy, router.BreakerOpen, router.ReloadFailed} {
			gauge(c.condition, th.Condition == cond, name, cond.String())
		}
		counter(c.probes, th.ProbesPassed, name, "passed")
		counter(c.probes, th.ProbesFailed, name, "failed")
		counter(c.reloads, th.Reloads, name, "accepted")
		counter(c.reloads, th.ReloadFailures, name, "rejected")
		counter(c.reloads, th.Rollbacks, name, "rolled_back")
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	fail := 1.0
	for i := range c.w.rungs {
		g := &c.w.rungs[i]
		tried, ok := g.tried.Load(), g.succeeded.Load()
		if dt := tried - c.prev[i][0]; dt > 0 {
			c.last[i] = float64(ok-c.prev[i][1]) / float64(dt)
		}
		c.prev[i] = [2]int64{tried, ok}
		fail *= 1 - c.last[i]
		ch <- prometheus.MustNewConstMetric(c.ratio, prometheus.GaugeValue, c.last[i], g.name)
	}
	ch <- prometheus.MustNewConstMetric(c.avail, prometheus.GaugeValue, 1-fail)
}

// infoCollector is ladder_model_info: one series per model tier, for the
// version it serves now. A watched router's versions are read from its
// Health at scrape time; events of loads and rollbacks tell the versions
// of a router that is not watched, and answers fill in a tier no event
// has told of yet, so that an answer finishing late on a replaced version
// does not bring it back.
type infoCollector struct {
	desc *prometheus.Desc
	w    *atomic.Pointer[watched]

	last  sync.Map // tier → the version shown, read by answers without mu
	mu    sync.Mutex
	shown map[string]string // tier → the version shown
	told  map[string]bool   // tiers whose version an event or Health gave
}

// served records that tier answered with version.
func (c *infoCollector) served(tier, version string) {
	if v, ok := c.last.Load(tier); ok && v.(string) == version {
		return
	}
	c.serving(tier, version, false)
}

// serving shows version as the one tier serves. A version told by an
// event or Health replaces any; one seen in an answer replaces only
// another seen in an answer.
func (c *infoCollector) serving(tier, version string, told bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.showLocked(tier, version, told)
}

func (c *infoCollector) showLocked(tier, version string, told bool) {
	if !told && c.told[tier] {
		return
	}
	c.told[tier] = c.told[tier] || told
	c.shown[tier] = version
	c.last.Store(tier, version)
}

func (c *infoCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *infoCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.w.Load(); w != nil {
		health := w.r.Health()
		for tier := range c.shown {
			if _, ok := health[tier]; !ok {
				delete(c.shown, tier)
				delete(c.told, tier)
				c.last.Delete(tier)
			}
		}
		for tier, th := range health {
			if th.Version != "" {
				c.showLocked(tier, th.Version, true)
			}
		}
	}
	for tier, version := range c.shown {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, tier, version)
	}
}
