package routertest_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/router/routertest"
	"github.com/ladder-ml/ladder/tensor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// features are the inputs the correct implementations below answer.
func features() []tensor.Tensor {
	return []tensor.Tensor{tensor.New("features", []int64{1, 4}, []float32{0.1, 0.2, 0.3, 0.4})}
}

// scoreSig is what score takes and gives.
var scoreSig = tensor.Signature{
	Inputs:  []tensor.Info{{Name: "features", DType: tensor.Float32, Shape: []int64{-1, 4}}},
	Outputs: []tensor.Info{{Name: "p", DType: tensor.Float32, Shape: []int64{-1, 1}}},
}

// score is a correct model as a plain function: the mean of each row of
// features, as "p".
func score(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var in [1]tensor.Tensor
	if err := tensor.CheckInputs("score", scoreSig.Inputs, inputs, in[:]); err != nil {
		return nil, err
	}
	rows, x := in[0].Shape[0], in[0].Data.([]float32)
	p := make([]float32, rows)
	for i := range p {
		p[i] = (x[4*i] + x[4*i+1] + x[4*i+2] + x[4*i+3]) / 4
	}
	return []tensor.Tensor{tensor.New("p", []int64{rows, 1}, p)}, nil
}

// scorer is score with every optional capability, as a models.Model has.
type scorer struct {
	closed atomic.Bool
}

func (s *scorer) Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if s.closed.Load() {
		return nil, errors.New("scorer: closed")
	}
	return score(ctx, inputs)
}

func (s *scorer) PredictTimeout(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.Predict(ctx, inputs)
}

func (s *scorer) Signature() tensor.Signature      { return scoreSig.Clone() }
func (s *scorer) Version() string                  { return "7" }
func (s *scorer) Warmup(ctx context.Context) error { _, err := s.Predict(ctx, features()); return err }
func (s *scorer) Close() error                     { s.closed.Store(true); return nil }

// metered is a correct wrapper: it counts calls, and forwards every
// capability. Around a model that bounds its own runs it is a
// meteredTimed, which does too; around one that does not, it is not one,
// so that the router runs it aside and stops waiting at the timeout.
type metered struct {
	m     router.Model
	calls atomic.Int64
}

type meteredTimed struct {
	*metered
	tp router.TimeoutPredictor
}

// meter wraps m in a metered, or a meteredTimed when m bounds its runs.
func meter(m router.Model) router.Model {
	w := &metered{m: m}
	if tp, ok := m.(router.TimeoutPredictor); ok {
		return meteredTimed{w, tp}
	}
	return w
}

func (w *metered) Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	w.calls.Add(1)
	return w.m.Predict(ctx, inputs)
}

func (w *metered) Unwrap() router.Model { return w.m }

func (w *metered) Warmup(ctx context.Context) error {
	if wm, ok := w.m.(router.Warmer); ok {
		return wm.Warmup(ctx)
	}
	return nil
}

func (w *metered) Close() error {
	if c, ok := w.m.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

func (w meteredTimed) PredictTimeout(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	w.calls.Add(1)
	return w.tp.PredictTimeout(ctx, timeout, inputs)
}

// replicas is a correct custom rung: a set of replicas of one model,
// asked in turn until one answers.
type replicas struct{ members []router.Model }

func (replicas) Name() string      { return "replicas" }
func (replicas) Kind() router.Kind { return "replicas" }

func (r replicas) Serve(ctx context.Context, req router.Request) (router.Answer, error) {
	var errs []error
	for i, m := range r.members {
		out, err := m.Predict(ctx, req.Inputs)
		if err == nil {
			return router.Answer{Outputs: out, Attempts: i + 1}, nil
		}
		if ctx.Err() != nil {
			return router.Answer{Attempts: i + 1}, ctx.Err()
		}
		errs = append(errs, err)
	}
	return router.Answer{Attempts: len(r.members)}, errors.Join(errs...)
}

func TestModelFuncConforms(t *testing.T) {
	routertest.TestModel(t, func(*testing.T) router.Model { return router.ModelFunc(score) },
		routertest.Options{Inputs: features()})
}

func TestAModelWithEveryCapabilityConforms(t *testing.T) {
	routertest.TestModel(t, func(*testing.T) router.Model { return &scorer{} },
		routertest.Options{Inputs: features()})
}

func TestAWrapperConforms(t *testing.T) {
	routertest.TestWrapper(t, func(_ *testing.T, inner router.Model) router.Model { return meter(inner) })
}

func TestAWrappedModelConforms(t *testing.T) {
	routertest.TestModel(t, func(*testing.T) router.Model { return meter(&scorer{}) },
		routertest.Options{Inputs: features()})
}

func TestACustomRungConforms(t *testing.T) {
	routertest.TestRung(t, func(*testing.T) router.Rung {
		down := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return nil, errors.New("replica down")
		})
		return replicas{members: []router.Model{down, router.ModelFunc(score), &scorer{}}}
	}, routertest.Options{Inputs: features()})
}

// hides wraps a model and forwards nothing but Predict.
type hides struct{ m router.Model }

func (h hides) Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	return h.m.Predict(ctx, inputs)
}

// selfish is a wrapper whose Unwrap returns itself.
type selfish struct{ hides }

func (s *selfish) Unwrap() router.Model { return s }

// oneLevel is a wrapper that forwards Signature and Version when the
// model it wraps has them, but is no Unwrapper.
type oneLevel struct{ hides }

func (o oneLevel) Signature() tensor.Signature {
	if s, ok := o.m.(router.SignatureReporter); ok {
		return s.Signature()
	}
	return tensor.Signature{}
}

func (o oneLevel) Version() string {
	if v, ok := o.m.(router.Versioner); ok {
		return v.Version()
	}
	return ""
}

// naive forwards PredictTimeout as Predict under a context that ends at
// the timeout, whatever it wraps, so around a model that ignores ctx it
// waits as long as the model does.
type naive struct{ *metered }

func (n naive) PredictTimeout(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return n.m.Predict(ctx, inputs)
}

// withMethods overrides some of a scorer's methods.
type withMethods struct {
	*scorer
	sig     func() tensor.Signature
	version func() string
	timeout func(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error)
	warmup  func(ctx context.Context) error
	close   func() error
}

func (w withMethods) Signature() tensor.Signature {
	if w.sig != nil {
		return w.sig()
	}
	return w.scorer.Signature()
}

func (w withMethods) Version() string {
	if w.version != nil {
		return w.version()
	}
	return w.scorer.Version()
}

func (w withMethods) PredictTimeout(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if w.timeout != nil {
		return w.timeout(ctx, timeout, inputs)
	}
	return w.scorer.PredictTimeout(ctx, timeout, inputs)
}

func (w withMethods) Warmup(ctx context.Context) error {
	if w.warmup != nil {
		return w.warmup(ctx)
	}
	return w.scorer.Warmup(ctx)
}

func (w withMethods) Close() error {
	if w.close != nil {
		return w.close()
	}
	return w.scorer.Close()
}

// brokenModels are models that each get one thing wrong, with the check
// that must fail for each (others may fail too), and Options.Inner when
// it is set. release ends what the hanging ones wait for.
func brokenModels(release chan struct{}) map[string]struct {
	m     router.Model
	inner router.Model
	fails string
} {
	var changeOnce sync.Once
	var n atomic.Int64
	var version atomic.Int64
	closeCh := make(chan struct{})
	return map[string]struct {
		m     router.Model
		inner router.Model
		fails string
	}{
		"panics on nil inputs": {m: router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			_ = in[0].Name
			return score(ctx, in)
		}), fails: "bad inputs get an answer or an error matching tensor.ErrInvalidInput"},
		"refuses bad inputs with a plain error": {m: router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			out, err := score(ctx, in)
			if errors.Is(err, tensor.ErrInvalidInput) {
				err = errors.New("bad input")
			}
			return out, err
		}), fails: "bad inputs get an answer or an error matching tensor.ErrInvalidInput"},
		"answers whatever ctx says": {m: router.ModelFunc(func(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			return score(context.Background(), in)
		}), fails: "a done ctx ends the call with ctx's error"},
		"hides ctx's error": {m: router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			out, err := score(ctx, in)
			if err != nil {
				err = fmt.Errorf("score: %v", err)
			}
			return out, err
		}), fails: "a done ctx ends the call with ctx's error"},
		"hangs whatever ctx says": {m: router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			if ctx.Err() != nil { // the other calls are quick, to keep the suite short
				<-release
			}
			return score(ctx, in)
		}), fails: "a done ctx ends the call with ctx's error"},
		"changes its inputs": {m: router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			out, err := score(ctx, in)
			if err == nil {
				// Once, so that concurrent calls do not race on it.
				changeOnce.Do(func() { in[0].Data.([]float32)[0] = 9 })
			}
			return out, err
		}), fails: "it answers the inputs"},
		"answers with NaN": {m: router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{float32(math.NaN())})}, nil
		}), fails: "it answers the inputs"},
		"answers each call otherwise": {m: router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			if _, err := score(ctx, in); err != nil {
				return nil, err
			}
			return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{float32(n.Add(1))})}, nil
		}), fails: "concurrent calls are safe and agree with a serial one"},

		"hides the Signature of the model it wraps": {m: hides{&scorer{}}, inner: &scorer{},
			fails: "it forwards the capabilities of the model it wraps"},
		"unwraps to itself": {m: &selfish{hides{&scorer{}}}, fails: "it forwards the capabilities of the model it wraps"},

		"reports a Signature the inputs do not fit": {m: withMethods{scorer: &scorer{}, sig: func() tensor.Signature {
			sig := scoreSig.Clone()
			sig.Inputs[0].Shape[1] = 5
			return sig
		}}, fails: "Signature and Version are stable and fit the inputs"},
		"reports a new Version every time": {m: withMethods{scorer: &scorer{}, version: func() string { return fmt.Sprint(version.Add(1)) }},
			fails: "Signature and Version are stable and fit the inputs"},
		"times out with an error of its own": {m: withMethods{scorer: &scorer{}, timeout: func(ctx context.Context, timeout time.Duration, in []tensor.Tensor) ([]tensor.Tensor, error) {
			if timeout < time.Millisecond {
				return nil, errors.New("too slow")
			}
			return score(ctx, in)
		}}, fails: "PredictTimeout honours its timeout and ctx"},
		"ignores ctx in PredictTimeout": {m: withMethods{scorer: &scorer{}, timeout: func(_ context.Context, _ time.Duration, in []tensor.Tensor) ([]tensor.Tensor, error) {
			return score(context.Background(), in)
		}}, fails: "PredictTimeout honours its timeout and ctx"},
		"fails to warm up": {m: withMethods{scorer: &scorer{}, warmup: func(context.Context) error { return errors.New("no") }},
			fails: "Warmup succeeds and leaves it answering"},
		"panics on a second Close": {m: withMethods{scorer: &scorer{}, close: func() error { close(closeCh); return nil }},
			fails: "Close is idempotent and ends calls cleanly"},
	}
}

func TestCheckModelFailsEachBrokenModel(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	for name, tc := range brokenModels(release) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := routertest.CheckModel(tc.m, routertest.Options{Inputs: features(), Inner: tc.inner})
			expectFailure(t, err, tc.fails)
		})
	}
	for name, m := range map[string]router.Model{
		"a ModelFunc":                    router.ModelFunc(score),
		"a model with every capability":  &scorer{},
		"a wrapper around it":            meter(&scorer{}),
		"a wrapper around a plain model": meter(router.ModelFunc(score)),
		"a wrapper around a wrapper":     meter(meter(&scorer{})),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := routertest.CheckModel(m, routertest.Options{Inputs: features()}); err != nil {
				t.Fatalf("the suite failed a correct model:\n%v", err)
			}
		})
	}
}

func TestCheckWrapperFailsEachBrokenWrapper(t *testing.T) {
	for name, tc := range map[string]struct {
		wrap  func(inner router.Model) router.Model
		fails string
	}{
		"drops the caller's ctx": {func(inner router.Model) router.Model {
			return router.ModelFunc(func(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
				return inner.Predict(context.Background(), in)
			})
		}, "around a model with every capability/it passes ctx on"},
		"forwards nothing but Predict": {func(inner router.Model) router.Model { return hides{inner} },
			"around a model with every capability/it forwards the capabilities of the model it wraps"},
		"forwards Signature and Version one level deep": {func(inner router.Model) router.Model { return oneLevel{hides{inner}} },
			"around a model that reports itself through Unwrap/router.SignatureOf and VersionOf see through it"},
		"is a TimeoutPredictor around a model that ignores ctx": {func(inner router.Model) router.Model { return naive{&metered{m: inner}} },
			"around a model that ignores ctx/PredictTimeout returns at its timeout"},
		"does not warm the model it wraps": {func(inner router.Model) router.Model {
			return withWarmup{meter(inner), func(context.Context) error { return nil }}
		}, "around a model with every capability/Warmup, Close and PredictTimeout reach the model"},
		"fails to warm up a model with nothing to warm": {func(inner router.Model) router.Model {
			return withWarmup{meter(inner), func(ctx context.Context) error {
				if w, ok := inner.(router.Warmer); ok {
					return w.Warmup(ctx)
				}
				return errors.New("nothing to warm up")
			}}
		}, "around a plain model/it claims no capability it cannot keep"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			expectFailure(t, routertest.CheckWrapper(tc.wrap), tc.fails)
		})
	}
	t.Run("a correct wrapper", func(t *testing.T) {
		t.Parallel()
		if err := routertest.CheckWrapper(meter); err != nil {
			t.Fatalf("the suite failed a correct wrapper:\n%v", err)
		}
	})
}

// withWarmup replaces a wrapper's Warmup, keeping its other methods but
// PredictTimeout.
type withWarmup struct {
	router.Model
	warmup func(ctx context.Context) error
}

func (w withWarmup) Warmup(ctx context.Context) error { return w.warmup(ctx) }
func (w withWarmup) Unwrap() router.Model             { return w.Model.(router.Unwrapper).Unwrap() }
func (w withWarmup) Close() error                     { return w.Model.(interface{ Close() error }).Close() }

// rung is a rung made of functions.
type rung struct {
	name  func() string
	kind  func() router.Kind
	serve func(ctx context.Context, req router.Request) (router.Answer, error)
}

func (r rung) Name() string      { return r.name() }
func (r rung) Kind() router.Kind { return r.kind() }
func (r rung) Serve(ctx context.Context, req router.Request) (router.Answer, error) {
	return r.serve(ctx, req)
}

// wrongRung returns replicas of score with some of its methods replaced.
func wrongRung(name func() string, kind func() router.Kind, serve func(ctx context.Context, req router.Request) (router.Answer, error)) router.Rung {
	m := replicas{members: []router.Model{router.ModelFunc(score)}}
	r := rung{m.Name, m.Kind, m.Serve}
	if name != nil {
		r.name = name
	}
	if kind != nil {
		r.kind = kind
	}
	if serve != nil {
		r.serve = serve
	}
	return r
}

func TestCheckRungFailsEachBrokenRung(t *testing.T) {
	var calls atomic.Int64
	answer := func(p float32) router.Answer {
		return router.Answer{Outputs: []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{p})}}
	}
	for name, tc := range map[string]struct {
		r     router.Rung
		fails string
	}{
		"has no name":            {wrongRung(func() string { return "" }, nil, nil), "Name and Kind are set, stable and not reserved"},
		"is named as a built-in": {wrongRung(func() string { return router.RungCache }, nil, nil), "Name and Kind are set, stable and not reserved"},
		"changes its name":       {wrongRung(func() string { return fmt.Sprint("r", calls.Add(1)) }, nil, nil), "Name and Kind are set, stable and not reserved"},
		"has no kind":            {wrongRung(nil, func() router.Kind { return "" }, nil), "Name and Kind are set, stable and not reserved"},
		"panics on the zero Request": {wrongRung(nil, nil, func(ctx context.Context, req router.Request) (router.Answer, error) {
			_ = req.Inputs[0]
			return replicas{members: []router.Model{router.ModelFunc(score)}}.Serve(ctx, req)
		}), "a zero Request and bad inputs never panic"},
		"answers whatever ctx says": {wrongRung(nil, nil, func(context.Context, router.Request) (router.Answer, error) {
			return answer(0.5), nil
		}), "a done ctx ends Serve with ctx's error"},
		"answers with NaN": {wrongRung(nil, nil, func(ctx context.Context, _ router.Request) (router.Answer, error) {
			return answer(float32(math.NaN())), ctx.Err()
		}), "it answers the inputs"},
		"answers each call otherwise": {wrongRung(nil, nil, func(ctx context.Context, _ router.Request) (router.Answer, error) {
			return answer(float32(calls.Add(1))), ctx.Err()
		}), "concurrent Serves are safe and agree with a serial one"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			expectFailure(t, routertest.CheckRung(tc.r, routertest.Options{Inputs: features()}), tc.fails)
		})
	}
	t.Run("a correct rung", func(t *testing.T) {
		t.Parallel()
		if err := routertest.CheckRung(wrongRung(nil, nil, nil), routertest.Options{Inputs: features()}); err != nil {
			t.Fatalf("the suite failed a correct rung:\n%v", err)
		}
	})
}

func TestTheSuitesRefuseToRunWithoutInputs(t *testing.T) {
	for name, err := range map[string]error{
		"CheckModel": routertest.CheckModel(router.ModelFunc(score), routertest.Options{}),
		"CheckRung":  routertest.CheckRung(replicas{}, routertest.Options{}),
	} {
		var f *routertest.Failure
		if !errors.As(err, &f) || f.Check != "Options" || !strings.Contains(f.Problem, "Inputs is empty") {
			t.Errorf("%s without inputs = %v; want a Failure of Options saying Inputs is empty", name, err)
		}
	}
}

// expectFailure fails t unless err holds a Failure of the check named
// want.
func expectFailure(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the suite passed it; want its check %q to fail", want)
	}
	var failed []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var f *routertest.Failure
		if !errors.As(e, &f) {
			t.Fatalf("the suite returned %v, which is no *Failure", e)
		}
		failed = append(failed, f.Check)
	}
	if !slices.Contains(failed, want) {
		t.Fatalf("the suite failed %q; want %q among them:\n%v", failed, want, err)
	}
	t.Log(err)
}

// childEnv names the broken implementation that
// TestTheSuitesFailThroughTesting runs a suite on, in a child process.
const childEnv = "ROUTERTEST_CHILD"

// TestTheSuitesFailThroughTesting checks that TestModel, TestWrapper and
// TestRung fail the subtest of the check that found a problem. A failing
// suite fails its test, so each runs in a test process of its own: this
// test, run again with childEnv set.
func TestTheSuitesFailThroughTesting(t *testing.T) {
	children := map[string]struct {
		run   func(t *testing.T)
		fails string
	}{
		"TestModel": {func(t *testing.T) {
			routertest.TestModel(t, func(*testing.T) router.Model {
				return router.ModelFunc(func(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
					return score(context.Background(), in)
				})
			}, routertest.Options{Inputs: features()})
		}, "a_done_ctx_ends_the_call_with_ctx's_error"},
		"TestWrapper": {func(t *testing.T) {
			routertest.TestWrapper(t, func(_ *testing.T, inner router.Model) router.Model { return hides{inner} })
		}, "around_a_model_with_every_capability/it_forwards_the_capabilities_of_the_model_it_wraps"},
		"TestRung": {func(t *testing.T) {
			routertest.TestRung(t, func(*testing.T) router.Rung { return wrongRung(func() string { return "" }, nil, nil) },
				routertest.Options{Inputs: features()})
		}, "Name_and_Kind_are_set,_stable_and_not_reserved"},
	}
	if name := os.Getenv(childEnv); name != "" {
		children[name].run(t)
		return
	}
	for name, tc := range children {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestTheSuitesFailThroughTesting$", "-test.v", "-test.count=1", "-test.timeout=60s")
			cmd.Env = append(os.Environ(), childEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("%s passed a broken implementation:\n%s", name, out)
			}
			want := "--- FAIL: TestTheSuitesFailThroughTesting/" + tc.fails + " "
			if !strings.Contains(string(out), want) {
				t.Fatalf("%s's output lacks %q:\n%s", name, want, out)
			}
		})
	}
}
