package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/policy"
)

// report is what report.json holds.
type report struct {
	Profile     string      `json:"profile"`
	Seed        uint64      `json:"seed"`
	Started     time.Time   `json:"started"`
	DurationS   float64     `json:"duration_s"`
	Scenarios   []result    `json:"scenarios"`
	About       []about     `json:"about"`
	Calibration calibReport `json:"calibration"`
	Goals       []goal      `json:"goals"`
	Pending     []string    `json:"pending"`
	Machine     machine     `json:"machine"`
}

// about describes one scenario as it ran.
type about struct {
	Name        string  `json:"name"`
	About       string  `json:"about"`
	Requests    int     `json:"requests"`
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"rate_per_s,omitempty"`
	Tuning      string  `json:"router_tuning,omitempty"`
}

// result is one system's measurements in one scenario.
type result struct {
	Name         string  `json:"name"`
	System       string  `json:"system"`
	Requests     int     `json:"requests"`
	Valid        int     `json:"valid"`    // requests with a well-formed input
	Answered     int     `json:"answered"` // valid requests given a finite probability in [0, 1]
	Wrong        int     `json:"wrong"`    // valid requests given NaN or an out-of-range value as if valid
	Errors       int     `json:"errors"`   // valid requests that got an error
	Rejected     int     `json:"rejected"` // invalid requests rejected with tensor.ErrInvalidInput
	InvalidBad   int     `json:"invalid_mishandled"`
	Availability float64 `json:"availability"` // answered / valid
	Accuracy     float64 `json:"accuracy"`     // of the answered, against the held-out labels
	P50MS        float64 `json:"p50_ms"`
	P95MS        float64 `json:"p95_ms"`
	P99MS        float64 `json:"p99_ms"`
	// ServiceP99MS is the p99 from the call rather than the scheduled
	// start: what the system took, without the sender's lateness.
	ServiceP99MS    float64        `json:"service_p99_ms"`
	P999MS          float64        `json:"p999_ms"`
	MaxMS           float64        `json:"max_ms"`
	Tiers           map[string]int `json:"tiers"`
	PrimaryAttempts int64          `json:"primary_attempts"` // calls to the primary inside fault windows
	PrimaryCalls    int64          `json:"primary_calls"`    // all calls to the primary
	PrimaryReached  int64          `json:"primary_reached"`  // calls the fault injector passed on to the model
	RecoveryMS      *float64       `json:"recovery_ms"`      // flap: worst time from an outage's end to the primary serving
	RecoveriesMS    []float64      `json:"recoveries_ms,omitempty"`
	DurationS       float64        `json:"duration_s"`
	FaultWindowsS   [][2]float64   `json:"fault_windows_s"`

	// The router's own view.
	Falls          *int64   `json:"falls,omitempty"`
	BreakerMoves   *int64   `json:"breaker_changes,omitempty"`
	BreakerOpenS   *float64 `json:"breaker_open_s,omitempty"`
	P99AfterOpenMS *float64 `json:"p99_after_open_ms,omitempty"`
	// ServiceP999MS and P999ThirdsMS are the p99.9 from the call, of the
	// whole run and of each third of an open-loop run (in order of the
	// requests' scheduled starts).
	ServiceP999MS float64   `json:"service_p999_ms"`
	P999ThirdsMS  []float64 `json:"service_p999_thirds_ms,omitempty"`
}

type calibReport struct {
	PrimaryP50MS    float64 `json:"primary_p50_ms"`
	PrimaryP99MS    float64 `json:"primary_p99_ms"`
	BackupP50MS     float64 `json:"backup_p50_ms"`
	BackupP99MS     float64 `json:"backup_p99_ms"`
	PrimaryAccuracy float64 `json:"primary_accuracy"`
	BackupAccuracy  float64 `json:"backup_accuracy"`
	HeuristicAcc    float64 `json:"heuristic_accuracy"`
	Concurrency     int     `json:"concurrency"`
	Requests        int     `json:"requests"`
}

type machine struct {
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	ORT        string `json:"ort_version"`
	ORTLibrary string `json:"ort_library"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func ptr[T any](v T) *T { return &v }

// summarize turns a run into its result.
func summarize(s scenario, rn *trial) result {
	res := result{Name: rn.scenario, System: rn.system, Requests: len(rn.recs), Tiers: map[string]int{},
		PrimaryAttempts: rn.primaryAttempts, PrimaryCalls: rn.primaryCalls, PrimaryReached: rn.primaryReached,
		DurationS: rn.end.Seconds(), FaultWindowsS: [][2]float64{}}
	var lats, service, afterOpen []time.Duration
	correct := 0
	opened := time.Duration(rn.breakerOpen.Load())
	for _, r := range rn.recs {
		switch r.out {
		case outRejected:
			res.Rejected++
			continue
		case outInvalidBad:
			res.InvalidBad++
			continue
		case outAnswered:
			res.Answered++
			res.Tiers[r.tier]++
			if r.correct {
				correct++
			}
		case outWrong:
			res.Wrong++
			res.Tiers[r.tier]++
		case outError:
			res.Errors++
		}
		res.Valid++
		lats = append(lats, r.latency)
		service = append(service, r.service)
		if opened >= 0 && r.start >= opened {
			afterOpen = append(afterOpen, r.latency)
		}
	}
	if res.Valid > 0 {
		res.Availability = float64(res.Answered) / float64(res.Valid)
	}
	if res.Answered > 0 {
		res.Accuracy = float64(correct) / float64(res.Answered)
	}
	sst := percentiles(service)
	res.ServiceP99MS, res.ServiceP999MS = ms(sst.p99), ms(sst.p999)
	st := percentiles(lats)
	res.P50MS, res.P95MS, res.P99MS, res.P999MS, res.MaxMS = ms(st.p50), ms(st.p95), ms(st.p99), ms(st.p999), ms(st.max)
	if s.paced() {
		third := len(rn.recs) / 3
		for i := range 3 {
			var part []time.Duration
			for _, r := range rn.recs[i*third : (i+1)*third] {
				if r.out != outRejected && r.out != outInvalidBad {
					part = append(part, r.service)
				}
			}
			res.P999ThirdsMS = append(res.P999ThirdsMS, ms(percentiles(part).p999))
		}
	}
	for _, w := range rn.windows {
		res.FaultWindowsS = append(res.FaultWindowsS, [2]float64{w.from.Seconds(), w.to.Seconds()})
	}
	if s.flap != nil {
		res.RecoveriesMS, res.RecoveryMS = recoveries(rn)
	}
	if rn.system == sysRouter {
		res.Falls, res.BreakerMoves = ptr(rn.falls.Load()), ptr(rn.breakerMoves.Load())
		if opened >= 0 {
			res.BreakerOpenS = ptr(opened.Seconds())
			res.P99AfterOpenMS = ptr(ms(percentiles(afterOpen).p99))
		}
	}
	return res
}

// recoveries returns, for each fault window that ends before the run does,
// the time from its end to the first answer the primary served to a
// request sent after it (-1 when the primary never served again), and the
// worst of them (nil if the primary failed to come back after any window).
func recoveries(rn *trial) ([]float64, *float64) {
	var all []float64
	worst := 0.0
	ok := true
	for _, w := range rn.windows {
		if w.to >= rn.end {
			continue
		}
		best := time.Duration(-1)
		for _, r := range rn.recs {
			if r.tier == "primary" && r.start >= w.to {
				if at := r.start + r.latency - w.to; best < 0 || at < best {
					best = at
				}
			}
		}
		if best < 0 {
			all = append(all, -1)
			ok = false
			continue
		}
		all = append(all, ms(best))
		worst = max(worst, ms(best))
	}
	if !ok || len(all) == 0 {
		return all, nil
	}
	return all, &worst
}

// goal is one check of the goals.
type goal struct {
	Scenario string `json:"scenario"`
	Goal     string `json:"goal"`
	Pass     bool   `json:"pass"`
	Detail   string `json:"detail"`
	// Margin is how far the measure is from its bound, as a fraction of
	// the bound (of the slack, for a bound that is a timeout plus a
	// slack): 0.4 means 40% to spare, negative a miss.
	Margin *float64 `json:"margin,omitempty"`
}

// jitterFloor is the least allowance a latency bound at the µs scale
// gets. On a shared 2-core machine one descheduled worker or a GC cycle
// moves a µs-scale p99 by a few hundred µs; a bound of 2x a 20 µs p99
// would judge that noise. The floor is far below the timeouts (1ms and
// more) the goals are there to tell apart: a request that waits for a
// dead primary's timeout still fails.
const jitterFloor = time.Millisecond

// margin returns (bound-x)/bound.
func margin(x, bound float64) *float64 {
	if bound == 0 {
		return nil
	}
	m := (bound - x) / bound
	return &m
}

// recoveryBound is the documented bound on the primary's return after an
// outage: the breaker's OpenFor (1s) plus time for its 3 probes.
const recoveryBound = 1500 * time.Millisecond

// evaluate checks the goals on the router's results.
func evaluate(results []result, c calibration) []goal {
	find := func(name, sys string) *result {
		for i := range results {
			if results[i].Name == name && results[i].System == sys {
				return &results[i]
			}
		}
		return nil
	}
	defaults := defaultPolicy()
	var goals []goal
	add := func(scenario, what string, pass bool, format string, args ...any) {
		goals = append(goals, goal{Scenario: scenario, Goal: what, Pass: pass, Detail: fmt.Sprintf(format, args...)})
	}
	within := func(x, bound float64) { goals[len(goals)-1].Margin = margin(x, bound) }
	for _, r := range results {
		if r.System != sysRouter {
			continue
		}
		// A heuristic rung is always configured, so some rung can answer
		// in every scenario.
		add(r.Name, "answers every valid request, none wrong", r.Answered == r.Valid && r.Wrong == 0,
			"answered %d/%d, wrong %d, errors %d", r.Answered, r.Valid, r.Wrong, r.Errors)
	}
	if r := find("primary-hang", sysRouter); r != nil {
		// The router's bound, from when it is called: the open loop's
		// latency from the scheduled start adds the sender's wake-up
		// lateness (up to a millisecond when Go's poller sleeps), which is
		// the harness's, not the router's.
		bound := ms(defaults.Timeout+c.backup.p99) + 2
		add(r.Name, "p99 from the call <= timeout + backup p99 + 2ms", r.ServiceP99MS <= bound,
			"p99 %.3fms from the call (%.3fms from the scheduled start), bound %.3fms (timeout %v, backup p99 %.3fms); %.3fms of the 2ms slack used",
			r.ServiceP99MS, r.P99MS, bound, defaults.Timeout, ms(c.backup.p99), max(r.ServiceP99MS-ms(defaults.Timeout+c.backup.p99), 0))
		goals[len(goals)-1].Margin = ptr((bound - r.ServiceP99MS) / 2) // of the 2ms slack
	}
	if r := find("primary-down", sysRouter); r != nil {
		// The backup alone, measured in the same window: the naive
		// switcher's backup calls, the same model on the same requests.
		backup := ms(c.backup.p99)
		if n := find("primary-down", sysNaive); n != nil && n.P99MS > backup {
			backup = n.P99MS
		}
		bound := max(2*backup, backup+ms(jitterFloor))
		const what = "p99 once the breaker is open <= 2x backup p99 (at least backup p99 + 1ms)"
		if r.P99AfterOpenMS == nil {
			add(r.Name, what, false, "the primary's breaker never opened")
		} else {
			add(r.Name, what, *r.P99AfterOpenMS <= bound,
				"p99 %.3fms after the breaker opened at %.3fs, bound %.3fms (backup p99 %.3fms: calibrated %.3fms, naive's in this scenario %.3fms)",
				*r.P99AfterOpenMS, *r.BreakerOpenS, bound, backup, ms(c.backup.p99), find("primary-down", sysNaive).P99MS)
			within(*r.P99AfterOpenMS, bound)
		}
	}
	if r, n := find("slow-tail", sysRouter), find("slow-tail", sysNaive); r != nil && n != nil {
		// Router and naive run side by side; each third of the run
		// compares the two in the same window, and the median third
		// decides, so one stall of the machine (which lifts a µs-scale
		// p99.9 to the stall's length) spoils one third, not the verdict.
		// Both are timed from the call: the sender's wake-up lateness
		// (up to a millisecond) is the harness's, the same for both, and
		// would only shrink the ratio.
		ratio, ratios := n.ServiceP999MS/r.ServiceP999MS, []float64(nil)
		if len(r.P999ThirdsMS) == 3 && len(n.P999ThirdsMS) == 3 {
			for i := range 3 {
				ratios = append(ratios, n.P999ThirdsMS[i]/r.P999ThirdsMS[i])
			}
			ratio = slices.Sorted(slices.Values(ratios))[1]
		}
		add(r.Name, "p99.9 from the call at least 5x lower than naive's (median of the run's thirds)", ratio >= 5,
			"median %.1fx; thirds %.1f; whole run from the call: router p99.9 %.3fms, naive %.3fms (%.1fx); from the scheduled start %.3fms, %.3fms",
			ratio, ratios, r.ServiceP999MS, n.ServiceP999MS, n.ServiceP999MS/r.ServiceP999MS, r.P999MS, n.P999MS)
		within(5, ratio)
	}
	for _, name := range []string{"transient", "nan", "flap"} {
		if r := find(name, sysRouter); r != nil {
			bound := 0.98 * c.primaryAccuracy
			add(name, "accuracy >= 0.98x the primary's fault-free accuracy", r.Accuracy >= bound,
				"accuracy %.4f, bound %.4f (primary %.4f)", r.Accuracy, bound, c.primaryAccuracy)
			within(bound, r.Accuracy)
		}
	}
	if r := find("flap", sysRouter); r != nil {
		switch {
		case r.RecoveryMS == nil:
			add(r.Name, fmt.Sprintf("primary serves again within %v of each outage's end", recoveryBound), false,
				"the primary did not serve again after every outage: %v ms", r.RecoveriesMS)
		default:
			add(r.Name, fmt.Sprintf("primary serves again within %v of each outage's end", recoveryBound),
				*r.RecoveryMS <= ms(recoveryBound), "worst %.0fms over %d outages: %v ms", *r.RecoveryMS, len(r.RecoveriesMS), rounded(r.RecoveriesMS))
			within(*r.RecoveryMS, ms(recoveryBound))
		}
	}
	if r := find("invalid-input", sysRouter); r != nil {
		pass := r.InvalidBad == 0 && r.Rejected > 0 && *r.Falls == 0 && *r.BreakerMoves == 0
		add(r.Name, "invalid requests rejected with ErrInvalidInput, no tier blamed", pass,
			"%d rejected, %d mishandled, %d falls, %d breaker changes", r.Rejected, r.InvalidBad, *r.Falls, *r.BreakerMoves)
	}
	return goals
}

func rounded(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(int(x + 0.5))
	}
	return out
}

// defaultPolicy returns the router's default tier policy, as resolved on
// this machine.
func defaultPolicy() policy.Config {
	c, err := policy.Config{}.Resolve()
	if err != nil {
		panic(err) // the zero config is valid by contract
	}
	return c
}

// printTable writes the results as an aligned table.
func printTable(w io.Writer, results []result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tsystem\treqs\tanswered\twrong\terrors\tavail\tacc\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\tprim.calls*\trecov ms\ttiers\t")
	last := ""
	for _, r := range results {
		name := r.Name
		if name == last {
			name = ""
		}
		last = r.Name
		recov := "-"
		switch {
		case r.RecoveryMS != nil:
			recov = fmt.Sprintf("%.0f", *r.RecoveryMS)
		case len(r.RecoveriesMS) > 0:
			recov = "never"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%.2f%%\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%s\t%s\t\n",
			name, r.System, r.Requests, r.Answered, r.Wrong, r.Errors, 100*r.Availability, r.Accuracy,
			r.P50MS, r.P99MS, r.P999MS, r.MaxMS, r.PrimaryAttempts, recov, tiers(r.Tiers))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "* calls that reached the primary while a fault was on. Latency covers valid requests, errors included.")
	return err
}

// tiers formats a tier mix in ladder order.
func tiers(m map[string]int) string {
	order := []string{"primary", "backup", "cache", "heuristic"}
	var parts []string
	for _, t := range order {
		if m[t] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", t, m[t]))
		}
	}
	for _, t := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(order, t) {
			parts = append(parts, fmt.Sprintf("%s=%d", t, m[t]))
		}
	}
	return strings.Join(parts, " ")
}

// printGoals writes one line per goal and reports whether all passed.
func printGoals(w io.Writer, goals []goal) bool {
	ok := true
	fmt.Fprintln(w, "\ngoals:")
	for _, g := range goals {
		mark := "PASS"
		if !g.Pass {
			mark, ok = "FAIL", false
		}
		m := ""
		if g.Margin != nil {
			m = fmt.Sprintf("; margin %.0f%%", 100**g.Margin)
			if *g.Margin > 1 {
				m = "; margin >100%" // the bound is not approached
			}
		}
		fmt.Fprintf(w, "  %s  %-14s %s: %s%s\n", mark, g.Scenario, g.Goal, g.Detail, m)
	}
	return ok
}

// writeJSON writes rep to dir/report.json.
func writeJSON(dir string, rep report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.json"), append(data, '\n'), 0o644)
}

// machineInfo describes where the run happened.
func machineInfo() machine {
	return machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPU: cpuModel(), NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), ORT: ort.GetVersion(), ORTLibrary: models.RuntimeLibrary()}
}

// cpuModel reads the CPU's model name from /proc/cpuinfo, or returns
// "unknown".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
