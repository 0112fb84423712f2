// Command degrade shows ladder at work on the bundled breast-cancer models.
//
// It builds the ladder primary.onnx → backup.onnx → last-good cache →
// heuristic, then scores the held-out rows in four phases: healthy, the
// primary failing, the primary and the backup failing, and everything
// recovered. The first rows of each phase print with the rung that served
// them and why every rung above it fell (Answer.Fell), and each phase ends
// with the accuracy of what was served and the tiers' health. Last, the
// primary is reloaded three times: a corrupt file and a version that
// answers NaN are rejected while the old version keeps serving, and a good
// version is swapped in.
//
// Two pauses are expected, and each phase says why: while a tier's
// breaker is still closed, a failing request is retried after a backoff
// of a millisecond or so, and a hanging backup costs its whole timeout
// (100ms) per request until its breaker opens.
//
//	make run
//
// or, once `make ort` has installed ONNX Runtime (or LADDER_ONNXRUNTIME_LIB
// names your own copy of 1.24.1):
//
//	go run ./examples/degrade
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/dataset"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/probe"
	"github.com/ladder-ml/ladder/reload"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

func main() {
	testdata := flag.String("testdata", "testdata", "folder holding the bundled models and heldout.csv")
	rows := flag.Int("rows", 4, "predictions to print per phase (all rows are scored)")
	flag.Parse()
	if err := run(*testdata, *rows); err != nil {
		fmt.Fprintln(os.Stderr, "degrade:", err)
		os.Exit(1)
	}
}

func run(dir string, show int) error {
	if err := models.InitRuntime(""); err != nil {
		return err
	}
	defer models.ShutdownRuntime()

	set, err := dataset.Load(filepath.Join(dir, "heldout.csv"))
	if err != nil {
		return err
	}
	primaryModel, err := models.Load(filepath.Join(dir, "primary.onnx"), models.Options{})
	if err != nil {
		return err
	}
	defer primaryModel.Close()
	backupModel, err := models.Load(filepath.Join(dir, "backup.onnx"), models.Options{})
	if err != nil {
		return err
	}
	defer backupModel.Close()

	// Fault injectors stand in for a bad deploy; in a service the tiers
	// are the models themselves.
	primary := chaos.Wrap(primaryModel, chaos.Fault{}, chaos.WithSeed(1))
	backup := chaos.Wrap(backupModel, chaos.Fault{}, chaos.WithSeed(2))

	// The primary's canaries, run by every reload: a small tumour and a
	// large one, each accepting any valid answer.
	large := slices.IndexFunc(set.Rows, func(r []float32) bool { return r[0] > 15 })
	canaries := []probe.Canary{
		{Inputs: []tensor.Tensor{tensor.New("features", []int64{1, 30}, set.Rows[0])}},
		{Inputs: []tensor.Tensor{tensor.New("features", []int64{1, 30}, set.Rows[large])}},
	}
	// The primary's reloader, which the last phase drives by hand. It has
	// no prober: this demo injects its faults by hand.
	reloader := reload.New(reload.Config{
		Load:     fileLoader(filepath.Join(dir, "primary.onnx")),
		Canaries: canaries,
		Retry:    reload.Retry{Attempts: 2, Backoff: 10 * time.Millisecond},
	})
	r, err := router.New(router.Config{
		Tiers: []router.Tier{
			{Name: "primary", Model: primary, Version: "v1", Manage: []router.Manager{reloader}},
			{Name: "backup", Model: backup},
		},
		Heuristic: meanRadiusRule,
		Check:     probabilityInRange,
	})
	if err != nil {
		return err
	}
	defer r.Close()

	fmt.Printf("ladder: %v on %d held-out rows (ONNX Runtime %s)\n\n", r.Rungs(), len(set.Rows), models.RuntimeVersion)
	phases := []struct {
		name            string
		why             string // what a newcomer sees, and why
		primary, backup chaos.Fault
		unseen          bool // perturb the rows so the cache has no answer
	}{
		{name: "healthy", why: "the primary serves every row."},
		{name: "primary failing", primary: chaos.Fault{ErrorRate: 1},
			why: "each failure is retried once after a short backoff (1ms, jittered), so the first rows pause;\n" +
				"   after 15 failed attempts the primary's breaker opens and it is skipped without an attempt."},
		{name: "primary failing, backup hanging", primary: chaos.Fault{ErrorRate: 1}, backup: chaos.Fault{HangRate: 1},
			why: "the backup hangs, and each hang costs its whole timeout (100ms) before the cache answers:\n" +
				"   that is the long pause. After 15 timeouts its breaker opens and the cache answers at once."},
		{name: "both down, rows never seen before", primary: chaos.Fault{ErrorRate: 1}, backup: chaos.Fault{HangRate: 1}, unseen: true,
			why: "the cache holds no answer for these rows, so the heuristic serves them."},
		{name: "recovered",
			why: "the run waited for the breakers' OpenFor (1s); three good half-open trials close each breaker again."},
	}
	for _, ph := range phases {
		primary.Set(ph.primary)
		backup.Set(ph.backup)
		if ph.name == "recovered" {
			time.Sleep(1100 * time.Millisecond) // the breakers' OpenFor
		}
		fmt.Printf("== %s\n   %s\n", ph.name, ph.why)
		tiers := map[string]int{}
		correct := 0
		start := time.Now()
		for i, row := range set.Rows {
			if ph.unseen {
				row = perturb(row)
			}
			in := []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)}
			a, err := r.Predict(context.Background(), in)
			if err != nil {
				return fmt.Errorf("row %d: %w", i, err)
			}
			p := a.Outputs[0].Data.([]float32)[0]
			label := 0
			if p >= 0.5 {
				label = 1
			}
			if label == set.Labels[i] {
				correct++
			}
			tiers[a.Tier]++
			if i < show {
				extra := ""
				if a.Kind == router.KindCache {
					extra = fmt.Sprintf(" (from %s, %v old)", a.Origin, a.Age.Round(time.Millisecond))
				}
				fmt.Printf("  row %3d  p=%.3f  label=%d  served by %-9s%s  %v\n",
					i, p, set.Labels[i], a.Tier, extra, a.Latency.Round(time.Microsecond))
				for _, f := range a.Fell {
					fmt.Printf("           fell: %s\n", f)
				}
			}
		}
		fmt.Printf("  served: %v  accuracy %.3f  in %v\n",
			tiers, float64(correct)/float64(len(set.Rows)), time.Since(start).Round(time.Millisecond))
		for _, name := range []string{"primary", "backup"} {
			fmt.Printf("  %s: %v\n", name, r.Health()[name])
		}
		fmt.Println()
	}
	return reloads(r, reloader, dir, set.Rows[1])
}

// fileLoader loads the model file at path, labelled with its name.
func fileLoader(path string) reload.Loader {
	return reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
		m, err := models.Load(path, models.Options{})
		if err != nil {
			return reload.Loaded{}, err
		}
		return reload.Loaded{Model: m, Version: filepath.Base(path), Source: path}, nil
	})
}

// reloads shows two reloads of the primary rejected and one accepted.
func reloads(r *router.Router, reloader *reload.Reloader, dir string, row []float32) error {
	fmt.Println("== reloads\n   each new version must load, fit the ladder's contract and answer its canaries;\n" +
		"   a rejected one leaves the old version serving, and says why.")
	in := []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)}
	for _, file := range []string{"corrupt.onnx", "nan.onnx", "primary.onnx"} {
		err := reloader.Reload(context.Background(), fileLoader(filepath.Join(dir, file)))
		verdict := "accepted"
		if err != nil {
			verdict = "rejected: " + err.Error()
		}
		a, perr := r.Predict(context.Background(), in)
		if perr != nil {
			return perr
		}
		h := r.Health()["primary"]
		fmt.Printf("  reload %-12s %s\n", file, verdict)
		fmt.Printf("    primary is %v, serving %s; the next row is served by %s %s\n", h.Condition, h.Version, a.Tier, a.Version)
	}
	fmt.Println()
	return nil
}

// meanRadiusRule is the heuristic rung: large tumours (mean radius above
// 15) are more often malignant (label 0).
func meanRadiusRule(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	p := float32(0.85)
	if in[0].Data.([]float32)[0] > 15 {
		p = 0.15
	}
	return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{p})}, nil
}

func probabilityInRange(out []tensor.Tensor) error {
	for _, p := range out[0].Data.([]float32) {
		if p < 0 || p > 1 {
			return fmt.Errorf("probability %v outside [0, 1]", p)
		}
	}
	return nil
}

// perturb returns a copy of row changed in its last digits, which no
// model answered before.
func perturb(row []float32) []float32 {
	out := make([]float32, len(row))
	for i, v := range row {
		out[i] = v * 1.0001
	}
	return out
}
