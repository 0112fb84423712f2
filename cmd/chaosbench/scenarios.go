package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/router"
)

// profile sizes a run: how many requests each scenario sends, how fast, and
// how long the timed scenarios last.
type profile struct {
	name        string
	requests    int           // requests per closed-loop scenario and system
	concurrency int           // workers of a closed-loop scenario
	rate        float64       // requests per second of a paced scenario
	hangFor     time.Duration // length of the paced primary-hang run
	flapLead    time.Duration // flap: time up before the first outage
	flapDown    time.Duration // flap: length of each outage
	flapUp      time.Duration // flap: time up between outages, and after the last
	flapCycles  int           // flap: number of outages
	safety      time.Duration // harness deadline on every request
	calibrate   int           // requests in each calibration run
	// openFor, when set, runs the scenarios that need no closed loop in
	// an open loop instead: requests arrive at rate for openFor, whatever
	// the systems are doing, and latency counts from each request's
	// scheduled start. Only overload (which needs its concurrency) and
	// both-down (which warms the cache first) stay closed.
	openFor time.Duration
	// slowRequests is the number of requests of the slow tail, whose goal
	// reads the p99.9: enough that it is not the few worst. It runs open
	// loop at slowRate, every system side by side, so that the router and
	// the naive switcher it is compared with share one window of the
	// machine's load; a closed loop of 8 CPU-bound workers on 2 cores
	// measured the scheduler's wake-up delay rather than the tail.
	slowRequests int
	slowRate     float64
}

var profiles = map[string]profile{
	// tiny is for the test: every scenario, a few hundred requests, one
	// short outage.
	"tiny": {name: "tiny", requests: 300, concurrency: 4, rate: 250, hangFor: 600 * time.Millisecond,
		flapLead: 300 * time.Millisecond, flapDown: 500 * time.Millisecond, flapUp: 1600 * time.Millisecond, flapCycles: 1,
		safety: 500 * time.Millisecond, calibrate: 500, slowRequests: 300, slowRate: 250},
	// open is the open-loop mode alone, for a picture of a service: the
	// short profile's sizes, with every scenario that can run open-loop
	// at 2,000 requests/s for 10 s.
	"open": {name: "open", requests: 5000, concurrency: 8, rate: 2000, hangFor: 10 * time.Second,
		flapLead: time.Second, flapDown: 2 * time.Second, flapUp: 2 * time.Second, flapCycles: 2,
		safety: 2 * time.Second, calibrate: 5000, openFor: 10 * time.Second, slowRequests: 15000, slowRate: 2000},
	// short is `make bench`: under a minute on two cores.
	"short": {name: "short", requests: 5000, concurrency: 8, rate: 400, hangFor: 3 * time.Second,
		flapLead: time.Second, flapDown: 2 * time.Second, flapUp: 2 * time.Second, flapCycles: 2,
		safety: 2 * time.Second, calibrate: 5000, slowRequests: 15000, slowRate: 2000},
	// full is a service rather than bursts: every scenario but overload
	// and both-down runs open-loop at 2,000 requests/s for 10 s, and
	// flap has five outages.
	"full": {name: "full", requests: 50000, concurrency: 8, rate: 2000, hangFor: 10 * time.Second,
		flapLead: time.Second, flapDown: 2 * time.Second, flapUp: 2 * time.Second, flapCycles: 5,
		safety: 2 * time.Second, calibrate: 20000, openFor: 10 * time.Second, slowRequests: 30000, slowRate: 2000},
}

// scenario is one named fault, run against every system with the same
// requests.
type scenario struct {
	name  string
	about string // one line for -help and the report

	requests    int     // requests per system
	concurrency int     // closed loop: this many workers
	rate        float64 // paced (open loop) when > 0: requests start at this rate

	// warm requests are served fault-free before the fault is installed,
	// so that the router's cache fills from real traffic.
	warm int

	primary, backup chaos.Fault // installed for the fault phase
	base            chaos.Fault // installed on the primary for the warm phase

	// flap, when set, makes the primary's fault a timed cycle that starts
	// at the run's start plus lead; fault windows are the outages.
	flap *flapping

	invalidRate float64 // fraction of requests with a wrong input shape

	// reload, when set, is a bad version of the primary (a testdata file)
	// deployed after the warm requests: the router reloads it, checked by
	// the primary's canaries; the other systems swap it in as it is.
	reload string

	// tune adjusts the router's config; nil keeps every default.
	tune func(*router.Config)
	// tuning says in words what tune changes, for the report.
	tuning string
}

type flapping struct {
	lead, down, up time.Duration
	cycles         int
}

// window is a span of a run, in time since the run's start.
type window struct{ from, to time.Duration }

// windows returns the outages of a flap.
func (f *flapping) windows() []window {
	var ws []window
	for i := range f.cycles {
		from := f.lead + time.Duration(i)*(f.down+f.up)
		ws = append(ws, window{from, from + f.down})
	}
	return ws
}

// duration is how long the flap runs: the outages, with an up period after
// each.
func (f *flapping) duration() time.Duration {
	return f.lead + time.Duration(f.cycles)*(f.down+f.up)
}

func (s *scenario) paced() bool { return s.rate > 0 }

// faulty reports whether s injects any fault.
func (s *scenario) faulty() bool {
	return s.flap != nil || s.primary != (chaos.Fault{}) || s.backup != (chaos.Fault{})
}

// pending lists the scenarios of the issue not built yet, with the reason.
var pending []string

// scenarioNames lists every scenario in catalogue order, for -help.
var scenarioNames = []string{"steady", "transient", "primary-down", "primary-hang", "slow-tail",
	"flap", "nan", "both-down", "overload", "invalid-input", "bad-reload"}

// slowTail returns the slow tail's extra latency and the router's tuned
// primary timeout, from the primary's calibrated latency.
//
// The tail is at least slowFloor: 50× a 5 µs model is 0.25 ms, inside the
// timer and scheduler jitter of a loaded 2-core machine (a 1 ms timer fires
// up to ~2 ms late there), where no timeout could cut it. A slow call of a
// real model — 50× a 0.5 ms model — is 25 ms.
func slowTail(c calibration) (slow, timeout time.Duration) {
	slow = max(50*c.primary.p50, slowFloor)
	timeout = max(5*c.primary.p99, time.Millisecond)
	return slow, timeout
}

// slowFloor is the shortest slow call the slow-tail scenario injects.
const slowFloor = 25 * time.Millisecond

// catalogue returns the scenarios of profile p, in order. The slow tail is
// sized from the calibration c.
func catalogue(p profile, c calibration) (out []scenario) {
	n, conc := p.requests, p.concurrency
	slow, slowTimeout := slowTail(c)
	flap := &flapping{lead: p.flapLead, down: p.flapDown, up: p.flapUp, cycles: p.flapCycles}
	hangN := int(p.rate * p.hangFor.Seconds())
	flapN := int(p.rate * flap.duration().Seconds())
	const bulkhead = 2
	defer func() {
		if p.openFor <= 0 {
			return
		}
		for i := range out {
			if sc := &out[i]; !sc.paced() && sc.warm == 0 && sc.name != "overload" {
				sc.rate, sc.concurrency, sc.requests = p.rate, 0, int(p.rate*p.openFor.Seconds())
				sc.about += fmt.Sprintf("; open loop at %.0f req/s for %v", p.rate, p.openFor)
			}
		}
	}()
	return []scenario{
		{name: "steady", about: "no faults: the baseline",
			requests: n, concurrency: conc},
		{name: "transient", about: "5% of primary calls fail once",
			requests: n, concurrency: conc, primary: chaos.Fault{ErrorRate: 0.05}},
		{name: "primary-down", about: "every primary call errors",
			requests: n, concurrency: conc, primary: chaos.Fault{ErrorRate: 1}},
		{name: "primary-hang", about: fmt.Sprintf("primary calls never return unless cancelled; paced at %.0f req/s", p.rate),
			requests: hangN, rate: p.rate, primary: chaos.Fault{HangRate: 1}},
		{name: "slow-tail", about: fmt.Sprintf("5%% of primary calls take %v longer (50x the primary's p50, at least 25ms); paced at %.0f req/s", slow.Round(time.Microsecond), p.slowRate),
			requests: p.slowRequests, rate: p.slowRate, primary: chaos.Fault{SlowRate: 0.05, SlowLatency: slow},
			tuning: fmt.Sprintf("primary Timeout %v (5x the primary's calibrated p99, at least 1ms), as policy.Config.Timeout advises; the default 100ms is above the tail",
				slowTimeout.Round(time.Microsecond)),
			tune: func(c *router.Config) { c.Tiers[0].Policy.Timeout = slowTimeout }},
		{name: "flap", about: fmt.Sprintf("primary down %v, up %v, %d times; paced at %.0f req/s", flap.down, flap.up, flap.cycles, p.rate),
			requests: flapN, rate: p.rate, flap: flap},
		{name: "nan", about: "10% of primary outputs are NaN",
			requests: n, concurrency: conc, primary: chaos.Fault{NaNRate: 0.1}},
		{name: "both-down", about: "primary and backup both error after 100 fault-free requests; the cache and the heuristic answer",
			requests: n, concurrency: conc, warm: 100,
			primary: chaos.Fault{ErrorRate: 1}, backup: chaos.Fault{ErrorRate: 1}},
		{name: "overload", about: fmt.Sprintf("concurrency %d offered to a primary with 1ms latency and a bulkhead of %d", 4*bulkhead, bulkhead),
			requests: n, concurrency: 4 * bulkhead, primary: chaos.Fault{Latency: time.Millisecond},
			tuning: fmt.Sprintf("primary MaxConcurrent %d", bulkhead),
			tune:   func(c *router.Config) { c.Tiers[0].Policy.MaxConcurrent = bulkhead }},
		{name: "invalid-input", about: "5% of requests have the wrong shape and must be rejected cleanly",
			requests: n, concurrency: conc, invalidRate: 0.05},
		{name: "bad-reload", about: "after 100 requests the primary is redeployed as nan.onnx (NaN for 31% of rows); the router's reload checks it against canaries",
			requests: n, concurrency: conc, warm: 100, reload: "nan.onnx",
			tuning: "primary Canaries: two held-out rows, one of them a large tumour"},
	}
}

// selectScenarios returns the scenarios named in list (comma-separated;
// empty means all), in catalogue order.
func selectScenarios(all []scenario, list string) ([]scenario, error) {
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(scenarioNames, name) {
			return nil, fmt.Errorf("unknown scenario %q; expected one of %s", name, strings.Join(scenarioNames, ", "))
		}
		want[name] = true
	}
	var out []scenario
	for _, s := range all {
		if want[s.name] {
			out = append(out, s)
		}
	}
	return out, nil
}
