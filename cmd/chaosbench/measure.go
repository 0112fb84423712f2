package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/dataset"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/probe"
	"github.com/ladder-ml/ladder/reload"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// The systems every scenario compares.
const (
	sysRouter = "router" // the ladder, default policies
	sysNaive  = "naive"  // primary, then backup on error; nothing else
	sysRaw    = "raw"    // the primary alone
)

var systems = []string{sysRouter, sysNaive, sysRaw}

// system answers one request. tier names what answered; it is empty on
// error.
type system interface {
	predict(ctx context.Context, in []tensor.Tensor) (p float32, tier string, err error)
}

// routerSystem is the ladder under test.
type routerSystem struct{ r *router.Router }

func (s routerSystem) predict(ctx context.Context, in []tensor.Tensor) (float32, string, error) {
	a, err := s.r.Predict(ctx, in)
	if err != nil {
		return 0, "", err
	}
	return first(a.Outputs), a.Tier, nil
}

// naiveSystem is the textbook model switcher: call the primary, and call
// the backup if the primary returns an error. No timeout, no breaker, no
// cache, no output check.
type naiveSystem struct{ primary, backup router.Model }

func (s naiveSystem) predict(ctx context.Context, in []tensor.Tensor) (float32, string, error) {
	out, err := s.primary.Predict(ctx, in)
	if err == nil {
		return first(out), "primary", nil
	}
	out, err = s.backup.Predict(ctx, in)
	if err != nil {
		return 0, "", err
	}
	return first(out), "backup", nil
}

// rawSystem is the primary model alone, unprotected.
type rawSystem struct{ m router.Model }

func (s rawSystem) predict(ctx context.Context, in []tensor.Tensor) (float32, string, error) {
	out, err := s.m.Predict(ctx, in)
	if err != nil {
		return 0, "", err
	}
	return first(out), "primary", nil
}

// first returns the first element of the first output, or NaN when there
// is none: an empty answer served as valid counts as wrong.
func first(out []tensor.Tensor) float32 {
	if len(out) == 0 {
		return float32(math.NaN())
	}
	d, ok := tensor.Data[float32](out[0])
	if !ok || len(d) == 0 {
		return float32(math.NaN())
	}
	return d[0]
}

// heuristic is the ladder's rule-based rung: predict benign (label 1) when
// the mean radius, feature 0, is below 15. It scores 0.865 on the held-out
// rows.
func heuristic(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	if len(in) != 1 || in[0].Name != "features" || len(in[0].Shape) != 2 || in[0].Shape[1] != features {
		return nil, fmt.Errorf("%w: heuristic expects one float32 tensor \"features\" [N,%d]", tensor.ErrInvalidInput, features)
	}
	x, ok := tensor.Data[float32](in[0])
	if !ok || int64(len(x)) != in[0].Shape[0]*features {
		return nil, fmt.Errorf("%w: heuristic expects %d float32 values per row", tensor.ErrInvalidInput, features)
	}
	rows := len(x) / features
	p := make([]float32, rows)
	for r := range rows {
		if x[r*features] < 15 {
			p[r] = 1
		}
	}
	return []tensor.Tensor{tensor.New("probability", []int64{int64(rows), 1}, p)}, nil
}

const features = 30

// tap counts the calls that reach the primary while a fault is on.
type tap struct {
	m       router.Model
	faulted func(time.Time) bool
	n       atomic.Int64
}

func (t *tap) Predict(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	if t.faulted(time.Now()) {
		t.n.Add(1)
	}
	return t.m.Predict(ctx, in)
}

// PredictTimeout forwards the inner model's own timeout path, as a wrapper
// must: without it the router would run every primary call on a helper
// goroutine under a context of its own, and count calls cut short at the
// timeout as abandoned until they return.
func (t *tap) PredictTimeout(ctx context.Context, timeout time.Duration, in []tensor.Tensor) ([]tensor.Tensor, error) {
	if t.faulted(time.Now()) {
		t.n.Add(1)
	}
	return router.PredictTimeout(ctx, t.m, timeout, in)
}

// Unwrap returns the inner model, so that the router sees its signature
// and version.
func (t *tap) Unwrap() router.Model { return t.m }

// request is one request of a scenario: a held-out row, possibly sent with
// the wrong shape.
type request struct {
	row     int
	invalid bool
}

// requests returns n requests over the rows of set: every row once in a
// seeded order, then again in the same order, and so on. A fraction
// invalid of them, drawn from the seed, have a wrong shape.
func requests(set dataset.Set, n int, invalid float64, seed uint64) []request {
	rng := rand.New(rand.NewPCG(seed, 0x1add3))
	order := rng.Perm(len(set.Rows))
	reqs := make([]request, n)
	for i := range reqs {
		reqs[i] = request{row: order[i%len(order)], invalid: invalid > 0 && rng.Float64() < invalid}
	}
	return reqs
}

// inputs builds the tensors of r. An invalid request drops the last
// feature, so the shape is [1,29].
func (r request) inputs(set dataset.Set) []tensor.Tensor {
	row := set.Rows[r.row]
	if r.invalid {
		return []tensor.Tensor{tensor.New("features", []int64{1, features - 1}, slices.Clone(row[:features-1]))}
	}
	return []tensor.Tensor{tensor.New("features", []int64{1, features}, slices.Clone(row))}
}

// outcome is what became of one request.
type outcome uint8

const (
	outAnswered   outcome = iota // a valid request got a finite probability in [0, 1]
	outWrong                     // a valid request got NaN, ±Inf or an out-of-range value with a nil error
	outError                     // a valid request got an error
	outRejected                  // an invalid request got an error matching tensor.ErrInvalidInput
	outInvalidBad                // an invalid request got an answer, or another error
)

// record is one request's measurement.
type record struct {
	start   time.Duration // since the run's start
	latency time.Duration // from the scheduled start in an open loop
	service time.Duration // from the call: what the system itself took
	tier    string
	out     outcome
	correct bool
}

// do sends request i to sys under the harness's safety deadline and
// records the outcome. Its latency counts from scheduled, the time the
// request was due to start, when that is set (an open loop), so that a
// stall of the sender or of the system cannot hide the requests it
// delayed; else from the call.
func do(sys system, set dataset.Set, req request, safety time.Duration, t0, scheduled time.Time) record {
	in := req.inputs(set)
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	called := time.Now()
	start := called
	if !scheduled.IsZero() {
		start = scheduled
	}
	p, tier, err := sys.predict(ctx, in)
	end := time.Now()
	cancel()
	rec := record{start: start.Sub(t0), latency: end.Sub(start), service: end.Sub(called), tier: tier}
	switch {
	case req.invalid && err != nil && errors.Is(err, tensor.ErrInvalidInput):
		rec.out = outRejected
	case req.invalid:
		rec.out = outInvalidBad
	case err != nil:
		rec.out = outError
		rec.tier = ""
	case !(p >= 0 && p <= 1): // NaN fails both comparisons
		rec.out = outWrong
	default:
		rec.out = outAnswered
		rec.correct = (p >= 0.5) == (set.Labels[req.row] == 1)
	}
	return rec
}

// closedLoop sends reqs[from:to] with conc workers, each sending its next
// request as soon as the last one returns.
func closedLoop(sys system, set dataset.Set, reqs []request, from, to, conc int, safety time.Duration, t0 time.Time, recs []record, done *atomic.Int64) {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				recs[i] = do(sys, set, reqs[i], safety, t0, time.Time{})
				done.Add(1)
			}
		})
	}
	wg.Wait()
}

// maxInFlight bounds a paced run's concurrency, so a hung system cannot
// pile up goroutines without limit.
const maxInFlight = 4096

// paced starts request i at t0 + i/rate, whatever the system is doing (an
// open loop), and waits for every request to return. Each request's
// latency counts from its scheduled start, not from when the sender got
// to it: no coordinated omission.
func paced(sys system, set dataset.Set, reqs []request, rate float64, safety time.Duration, t0 time.Time, recs []record, done *atomic.Int64) {
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	for i := range reqs {
		at := t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Go(func() {
			recs[i] = do(sys, set, reqs[i], safety, t0, at)
			done.Add(1)
			<-sem
		})
	}
	wg.Wait()
}

// trial is one system's run of one scenario.
type trial struct {
	scenario string
	system   string
	recs     []record
	windows  []window // fault windows, since the start
	end      time.Duration

	primaryAttempts int64 // calls that reached the primary in a fault window
	primaryCalls    int64 // every call to the primary
	primaryReached  int64 // calls the primary's fault injector passed to the model

	// router only
	breakerOpen  atomic.Int64 // first time since the start the primary's breaker opened, in ns; -1 if never
	falls        atomic.Int64 // rungs that could not answer
	breakerMoves atomic.Int64 // breaker state changes
}

// swapped is a primary that a redeploy replaces in place: how the systems
// without a reload path take a new version.
type swapped struct{ cur atomic.Pointer[tap] }

func (s *swapped) Predict(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	return s.cur.Load().Predict(ctx, in)
}

// canaries are the router's checks of a reloaded primary: the first
// held-out row and the first large tumour, each accepting any valid
// answer.
func canaries(set dataset.Set) []probe.Canary {
	large := slices.IndexFunc(set.Rows, func(r []float32) bool { return r[0] > 15 })
	var cs []probe.Canary
	for _, i := range []int{0, max(large, 0)} {
		cs = append(cs, probe.Canary{Inputs: []tensor.Tensor{tensor.New("features", []int64{1, features}, set.Rows[i])}})
	}
	return cs
}

// redeploy deploys file as the primary's new version: through the
// router's reloader when rl is set (its rejection is the expected
// outcome), else by swapping it into sw, returning the model for the
// caller to close after the run. The router closes a version it rejects.
func redeploy(file string, rl *reload.Reloader, sw *swapped, faulted func(time.Time) bool) (*models.Model, error) {
	m, err := models.Load(testdataPath(file), models.Options{Name: "redeployed"})
	if err != nil {
		return nil, err
	}
	if rl != nil {
		err := rl.Reload(context.Background(), reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
			return reload.Loaded{Model: m, Version: file, Source: file}, nil
		}))
		if err == nil {
			return nil, fmt.Errorf("the router accepted %s; want it rejected", file)
		}
		return nil, nil
	}
	sw.cur.Store(&tap{m: m, faulted: faulted})
	return m, nil
}

// loaded holds one system's own model sessions.
type loaded struct{ primary, backup *models.Model }

// loadModels loads fresh sessions of both models and warms them up, so
// that no system pays a session's first, slow runs during the measurement.
func loadModels() (loaded, error) {
	p, err := models.Load(testdataPath("primary.onnx"), models.Options{Name: "primary"})
	if err != nil {
		return loaded{}, err
	}
	b, err := models.Load(testdataPath("backup.onnx"), models.Options{Name: "backup"})
	if err != nil {
		p.Close()
		return loaded{}, err
	}
	l := loaded{p, b}
	for range 20 {
		if err := errors.Join(p.Warmup(context.Background()), b.Warmup(context.Background())); err != nil {
			l.close()
			return loaded{}, err
		}
	}
	return l, nil
}

func (l loaded) close() error { return errors.Join(l.primary.Close(), l.backup.Close()) }

// runSystem runs scenario s against a fresh instance of system name: new
// model sessions, new fault injectors seeded with seed, a new router.
func runSystem(s scenario, name string, set dataset.Set, reqs []request, p profile, seed uint64, t0 time.Time, done *atomic.Int64) (*trial, error) {
	ms, err := loadModels()
	if err != nil {
		return nil, err
	}
	defer ms.close()
	if t0.IsZero() {
		t0 = time.Now() // closed loop: the clock starts once the models are ready
	}

	rn := &trial{scenario: s.name, system: name, recs: make([]record, len(reqs))}
	rn.breakerOpen.Store(-1)
	primaryFault, backupFault := s.base, chaos.Fault{}
	var faulting atomic.Bool
	faulted := func(time.Time) bool { return faulting.Load() }
	if s.flap != nil {
		primaryFault = chaos.Fault{DownFor: s.flap.down, UpFor: s.flap.up, Start: t0.Add(s.flap.lead)}
		rn.windows = s.flap.windows()
		faulted = func(now time.Time) bool {
			at := now.Sub(t0)
			for _, w := range rn.windows {
				if at >= w.from && at < w.to {
					return true
				}
			}
			return false
		}
	} else if s.warm == 0 {
		primaryFault, backupFault = s.primary, s.backup
		faulting.Store(s.faulty())
	}
	primary := chaos.Wrap(ms.primary, primaryFault, chaos.WithSeed(seed))
	backup := chaos.Wrap(ms.backup, backupFault, chaos.WithSeed(seed+1))
	pt := &tap{m: primary, faulted: faulted}
	sw := &swapped{}
	sw.cur.Store(pt)

	var (
		sys system
		rl  *reload.Reloader // the router's primary's, for a redeploy
	)
	switch name {
	case sysRouter:
		cfg := router.Config{
			Tiers:     []router.Tier{{Name: "primary", Model: pt}, {Name: "backup", Model: backup}},
			Heuristic: heuristic,
			OnEvent: func(e router.Event) {
				switch e.Kind {
				case router.Fell:
					rn.falls.Add(1)
				case router.BreakerChanged:
					rn.breakerMoves.Add(1)
					if e.Tier == "primary" && e.Breaker.To == policy.Open {
						rn.breakerOpen.CompareAndSwap(-1, int64(time.Since(t0)))
					}
				}
			},
		}
		if s.reload != "" {
			// Reloads are by hand (redeploy): the Config's Load is never
			// called, as the tier has its Model.
			rl = reload.New(reload.Config{Canaries: canaries(set), Load: reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
				return reload.Loaded{}, errors.New("chaosbench: the primary is redeployed by hand")
			})})
			cfg.Tiers[0].Manage = []router.Manager{rl}
		}
		if s.tune != nil {
			s.tune(&cfg)
		}
		r, err := router.New(cfg)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		sys = routerSystem{r}
	case sysNaive:
		sys = naiveSystem{primary: sw, backup: backup}
	case sysRaw:
		sys = rawSystem{sw}
	default:
		return nil, fmt.Errorf("unknown system %q", name)
	}

	switch {
	case s.paced():
		if s.flap == nil && s.faulty() {
			rn.windows = []window{{}} // the fault is on the whole run
		}
		paced(sys, set, reqs, s.rate, p.safety, t0, rn.recs, done)
	case s.warm > 0:
		closedLoop(sys, set, reqs, 0, s.warm, s.concurrency, p.safety, t0, rn.recs, done)
		primary.Set(s.primary)
		backup.Set(s.backup)
		rn.windows = []window{{from: time.Since(t0)}}
		faulting.Store(true)
		if s.reload != "" {
			m, err := redeploy(s.reload, rl, sw, faulted)
			if err != nil {
				return nil, err
			}
			if m != nil {
				defer m.Close() // after the requests
			}
		}
		closedLoop(sys, set, reqs, s.warm, len(reqs), s.concurrency, p.safety, t0, rn.recs, done)
	default:
		if s.faulty() {
			rn.windows = []window{{}}
		}
		closedLoop(sys, set, reqs, 0, len(reqs), s.concurrency, p.safety, t0, rn.recs, done)
	}
	rn.end = time.Since(t0)
	for i := range rn.windows {
		if rn.windows[i].to == 0 {
			rn.windows[i].to = rn.end
		}
	}
	rn.primaryAttempts = pt.n.Load()
	rn.primaryCalls = primary.Calls()
	rn.primaryReached = primary.Reached()
	return rn, nil
}

// runScenario runs s against every system: one after the other for a
// closed-loop scenario, so that they do not share the CPU, and side by
// side from the same start for a paced one, so that their fault windows
// line up and the run takes a third of the time.
func runScenario(s scenario, set dataset.Set, p profile, seed uint64, done *atomic.Int64) ([]*trial, error) {
	reqs := requests(set, s.requests, s.invalidRate, seed)
	runs := make([]*trial, len(systems))
	errs := make([]error, len(systems))
	if !s.paced() {
		for i, name := range systems {
			runs[i], errs[i] = runSystem(s, name, set, reqs, p, seed, time.Time{}, done)
		}
		return runs, errors.Join(errs...)
	}
	t0 := time.Now().Add(300 * time.Millisecond) // after every system has loaded its models
	var wg sync.WaitGroup
	for i, name := range systems {
		wg.Go(func() { runs[i], errs[i] = runSystem(s, name, set, reqs, p, seed, t0, done) })
	}
	wg.Wait()
	return runs, errors.Join(errs...)
}

// latencyStats are latency percentiles.
type latencyStats struct {
	p50, p95, p99, p999, max time.Duration
}

// percentiles returns the latency percentiles of lats, sorting it.
func percentiles(lats []time.Duration) latencyStats {
	if len(lats) == 0 {
		return latencyStats{}
	}
	slices.Sort(lats)
	q := func(f float64) time.Duration {
		i := int(math.Ceil(f*float64(len(lats)))) - 1
		return lats[min(max(i, 0), len(lats)-1)]
	}
	return latencyStats{p50: q(0.50), p95: q(0.95), p99: q(0.99), p999: q(0.999), max: lats[len(lats)-1]}
}

// calibration is the fault-free behaviour of each model on its own.
type calibration struct {
	primary, backup latencyStats
	// Accuracy of each rung alone on every held-out row.
	primaryAccuracy, backupAccuracy, heuristicAccuracy float64
}

// calibrate measures each model alone, straight through models.Model, with
// the profile's closed-loop concurrency and no faults.
func calibrate(set dataset.Set, p profile, seed uint64) (calibration, error) {
	ms, err := loadModels()
	if err != nil {
		return calibration{}, err
	}
	defer ms.close()
	var c calibration
	reqs := requests(set, max(p.calibrate, len(set.Rows)), 0, seed)
	measure := func(m *models.Model) latencyStats {
		sys := rawSystem{m}
		var done atomic.Int64
		warm := make([]record, min(len(reqs), 200))
		closedLoop(sys, set, reqs, 0, len(warm), p.concurrency, p.safety, time.Now(), warm, &done)
		recs := make([]record, len(reqs))
		closedLoop(sys, set, reqs, 0, len(reqs), p.concurrency, p.safety, time.Now(), recs, &done)
		lats := make([]time.Duration, len(recs))
		for i, r := range recs {
			lats[i] = r.latency
		}
		return percentiles(lats)
	}
	c.primary = measure(ms.primary)
	c.backup = measure(ms.backup)
	c.primaryAccuracy = accuracy(ms.primary, set)
	c.backupAccuracy = accuracy(ms.backup, set)
	c.heuristicAccuracy = accuracy(router.ModelFunc(heuristic), set)
	return c, nil
}

// accuracy scores m once on every row of set.
func accuracy(m router.Model, set dataset.Set) float64 {
	correct := 0
	for i := range set.Rows {
		rec := do(rawSystem{m}, set, request{row: i}, time.Minute, time.Now(), time.Time{})
		if rec.correct {
			correct++
		}
	}
	return float64(correct) / float64(len(set.Rows))
}
