// Command chaosbench is ladder's benchmark and chaos harness. It drives a
// ladder of the bundled test models in-process through a catalogue of
// named faults, and compares it, on the same requests in the same run,
// with two alternatives:
//
//   - router: the ladder (primary → backup → last-good cache → heuristic)
//     with default policies;
//   - naive: the textbook switcher, which calls the primary and, if that
//     returns an error, the backup; no timeout, breaker, cache or output
//     check;
//   - raw: the primary model alone.
//
// Each system gets its own model sessions and its own fault injectors
// (package chaos) seeded alike. Every request carries a safety deadline
// (2s in the short profile) so that a hung naive or raw system cannot stall
// the run; a request that hits it counts as an error.
//
// Usage:
//
//	cd cmd/chaosbench && go run . [-profile short] [-scenario flap,both-down] [-out bench-out]
//
// or `make bench` from the repository root. It finds ONNX Runtime as
// models.InitRuntime("") does: LADDER_ONNXRUNTIME_LIB, else the per-user
// copy that `make ort` installs.
//
// The harness is a module of its own, so that gonum/plot stays out of the
// library's go.mod; a replace directive points it at the ladder source
// tree two folders up. It prints a table, writes report.json and a picture of
// the router over time (router.png, router.svg) to -out, checks the goals
// and exits with status 1 if any is missed. Run it with -help for the
// scenarios.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/internal/bundled"
	"github.com/ladder-ml/ladder/internal/dataset"
	"github.com/ladder-ml/ladder/models"
)

func main() {
	started := false
	startRuntime = func() error {
		started = true
		return models.InitRuntime("") // LADDER_ONNXRUNTIME_LIB, else the per-user copy
	}
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	if started {
		if err := models.ShutdownRuntime(); err != nil {
			fmt.Fprintln(os.Stderr, "chaosbench:", err)
		}
	}
	os.Exit(code)
}

// startRuntime initialises ONNX Runtime once the flags are parsed, so that
// -help works without it. The test initialises it itself and leaves this
// nil.
var startRuntime func() error

// testdataPath returns the path of a file in the repository's testdata.
func testdataPath(name string) string { return bundled.Path(name) }

// run is the whole command. It returns the exit status: 0 when every goal is met, 1 when one is missed,
// 2 on a usage or setup error.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chaosbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	prof := fs.String("profile", "short", "run size: tiny, short, open or full")
	list := fs.String("scenario", "", "comma-separated scenarios to run (default all)")
	out := fs.String("out", "bench-out", "directory for report.json, router.png and router.svg")
	seed := fs.Uint64("seed", 1, "seed of the fault injectors and of the request order")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "chaosbench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	p, ok := profiles[*prof]
	if !ok {
		fmt.Fprintf(stderr, "chaosbench: unknown profile %q; expected tiny, short, open or full\n", *prof)
		return 2
	}
	if _, err := selectScenarios(nil, *list); err != nil {
		fmt.Fprintln(stderr, "chaosbench:", err)
		return 2
	}
	if startRuntime != nil {
		if err := startRuntime(); err != nil {
			fmt.Fprintln(stderr, "chaosbench:", err)
			return 2
		}
	}
	if err := bench(p, *list, *out, *seed, stdout, stderr); err != nil {
		if errors.Is(err, errGoals) {
			return 1
		}
		fmt.Fprintln(stderr, "chaosbench:", err)
		return 2
	}
	return 0
}

// errGoals reports that the run finished but missed a goal.
var errGoals = errors.New("goals missed")

// bench runs the selected scenarios of profile p and writes the report.
func bench(p profile, list, out string, seed uint64, stdout, stderr io.Writer) error {
	started := time.Now()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	set, err := dataset.Load(testdataPath("heldout.csv"))
	if err != nil {
		return err
	}
	bar := newProgress(stderr)
	defer bar.stop()

	bar.label("calibrating")
	cal, err := calibrate(set, p, seed)
	if err != nil {
		return fmt.Errorf("calibrating: %w", err)
	}
	scenarios, err := selectScenarios(catalogue(p, cal), list)
	if err != nil {
		return err
	}
	total := 0
	for _, s := range scenarios {
		total += len(systems) * s.requests
	}
	bar.total.Store(int64(total))

	rep := report{Profile: p.name, Seed: seed, Started: started.UTC(), Pending: pending, Machine: machineInfo(),
		Calibration: calibReport{PrimaryP50MS: ms(cal.primary.p50), PrimaryP99MS: ms(cal.primary.p99),
			BackupP50MS: ms(cal.backup.p50), BackupP99MS: ms(cal.backup.p99), PrimaryAccuracy: cal.primaryAccuracy,
			BackupAccuracy: cal.backupAccuracy, HeuristicAcc: cal.heuristicAccuracy,
			Concurrency: p.concurrency, Requests: max(p.calibrate, len(set.Rows))}}
	var panels []panel
	for _, s := range scenarios {
		bar.label(s.name)
		runs, err := runScenario(s, set, p, seed, &bar.done)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", s.name, err)
		}
		rep.About = append(rep.About, about{Name: s.name, About: s.about, Requests: s.requests,
			Concurrency: s.concurrency, Rate: s.rate, Tuning: s.tuning})
		pn := panel{scenario: s}
		for _, rn := range runs {
			rep.Scenarios = append(rep.Scenarios, summarize(s, rn))
			switch rn.system {
			case sysRouter:
				pn.router = rn
			case sysNaive:
				pn.naive = rn
			}
		}
		panels = append(panels, pn)
		bar.logf("%s done at %.1fs", s.name, time.Since(started).Seconds())
	}
	bar.stop()
	rep.Goals = evaluate(rep.Scenarios, cal)
	rep.DurationS = time.Since(started).Seconds()

	fmt.Fprintf(stdout, "ladder chaosbench, profile %s, seed %d: %s, %d CPUs, %s, ONNX Runtime %s\n",
		p.name, seed, rep.Machine.CPU, rep.Machine.NumCPU, rep.Machine.Go, rep.Machine.ORT)
	fmt.Fprintf(stdout, "calibration (concurrency %d): primary p50 %.3fms p99 %.3fms acc %.4f; backup p50 %.3fms p99 %.3fms acc %.4f; heuristic acc %.4f\n\n",
		p.concurrency, ms(cal.primary.p50), ms(cal.primary.p99), cal.primaryAccuracy,
		ms(cal.backup.p50), ms(cal.backup.p99), cal.backupAccuracy, cal.heuristicAccuracy)
	if err := printTable(stdout, rep.Scenarios); err != nil {
		return err
	}
	passed := printGoals(stdout, rep.Goals)
	if err := writeJSON(out, rep); err != nil {
		return err
	}
	pics, err := drawRouter(out, panels, fmt.Sprintf("profile %s, %s", p.name, rep.Machine.CPU))
	if err != nil {
		return fmt.Errorf("drawing: %w", err)
	}
	fmt.Fprintf(stdout, "\nwrote %s/report.json, %s in %.1fs\n", out, strings.Join(pics, ", "), rep.DurationS)
	if !passed {
		fmt.Fprintln(stdout, "some goals were missed")
		return errGoals
	}
	return nil
}

func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, `chaosbench drives a ladder of the bundled ONNX models (testdata/primary.onnx,
backup.onnx) in-process through named faults, and compares the router with a
naive primary→backup switcher and the raw primary, on the same requests.

usage: go run . [flags]   (in cmd/chaosbench, after make ort; or make bench)

flags:
`)
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nscenarios:")
	for _, s := range catalogue(profiles["short"], calibration{}) {
		fmt.Fprintf(w, "  %-14s %s\n", s.name, s.about)
		if s.tuning != "" {
			fmt.Fprintf(w, "  %-14s router tuning: %s\n", "", s.tuning)
		}
	}
	fmt.Fprintln(w, "\npending:")
	for _, s := range pending {
		fmt.Fprintln(w, "  "+s)
	}
	fmt.Fprintln(w, "  -url: drive an HTTP service instead of the in-process ladder (ladder has no HTTP service yet)")
	fmt.Fprint(w, `
profiles: tiny (a few hundred requests, for the test), short (make bench, under
a minute on two cores), open (short's sizes, with every scenario but overload
and both-down open-loop at 2,000 req/s for 10 s), full (open-loop at 2,000
req/s for 10 s, ten times the closed-loop requests, five outages in flap).
In an open loop latency counts from each request's scheduled start.

exit status: 0 when every goal is met, 1 when any is missed, 2 on errors.
`)
}

// progress is a one-line progress bar on stderr. It shows itself only
// after two seconds and only on a terminal; elsewhere it logs a line per
// scenario.
type progress struct {
	w        io.Writer
	tty      bool
	start    time.Time
	done     atomic.Int64
	total    atomic.Int64
	current  atomic.Pointer[string]
	shown    atomic.Bool
	quit     chan struct{}
	finished chan struct{}
	stopped  atomic.Bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, start: time.Now(), quit: make(chan struct{}), finished: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	p.current.Store(new(string))
	if !p.tty {
		close(p.finished)
		return p
	}
	go func() {
		defer close(p.finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				if p.shown.Load() {
					fmt.Fprintf(p.w, "\r%80s\r", "")
				}
				return
			case <-t.C:
				if time.Since(p.start) > 2*time.Second {
					p.draw()
				}
			}
		}
	}()
	return p
}

func (p *progress) draw() {
	p.shown.Store(true)
	frac := 0.0
	if t := p.total.Load(); t > 0 {
		frac = min(float64(p.done.Load())/float64(t), 1)
	}
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %-14s %5.1fs ", strings.Repeat("#", n), strings.Repeat(".", width-n),
		100*frac, *p.current.Load(), time.Since(p.start).Seconds())
}

func (p *progress) label(s string) { p.current.Store(&s) }

// logf writes a line when the bar is not drawn (stderr is not a terminal).
func (p *progress) logf(format string, args ...any) {
	if !p.tty {
		fmt.Fprintf(p.w, "chaosbench: "+format+"\n", args...)
	}
}

// stop removes the bar and waits for its goroutine. It is idempotent.
func (p *progress) stop() {
	if p.stopped.Swap(true) {
		return
	}
	close(p.quit)
	<-p.finished
}
