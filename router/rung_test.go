package router_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// mean is a rung of a kind the router does not know: an ensemble that
// averages the probabilities of its members. It could live in a package
// of its own; it uses only the router's public API.
type mean struct {
	name    string
	kind    router.Kind
	members []router.Model
	// fault, when set, replaces the answer.
	fault func() ([]tensor.Tensor, error)
	// seen records what the last request looked like to the rung.
	key    string
	budget time.Duration
	warmed int
}

// Warmup makes the ensemble a Warmer, which the router calls.
func (m *mean) Warmup(context.Context) error { m.warmed++; return nil }

func (m *mean) Name() string      { return m.name }
func (m *mean) Kind() router.Kind { return m.kind }

func (m *mean) Serve(ctx context.Context, req router.Request) (router.Answer, error) {
	m.key, m.budget = req.Key(), req.Budget(ctx, time.Second)
	if m.fault != nil {
		out, err := m.fault()
		return router.Answer{Outputs: out, Attempts: 1}, err
	}
	var sum float32
	for _, member := range m.members {
		out, err := member.Predict(ctx, req.Inputs)
		if err != nil {
			return router.Answer{Attempts: 1}, err
		}
		sum += out[0].Data.([]float32)[0]
	}
	return router.Answer{Outputs: probability(sum / float32(len(m.members))), Attempts: 1, Version: "mean-1"}, nil
}

const kindEnsemble router.Kind = "ensemble"

func TestANewKindOfRungPlugsIn(t *testing.T) {
	testenv.MustHaveRuntime(t)
	primary, backup := testenv.Load(t, "primary.onnx"), testenv.Load(t, "backup.onnx")
	ens := &mean{name: "mean", kind: kindEnsemble, members: []router.Model{primary, backup}}
	// Given primary → an ensemble → cache → heuristic, with the primary down,
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		c.Tiers = c.Tiers[:1]
		c.Rungs = []router.Rung{ens}
	})
	if got := l.R.Rungs(); len(got) != 4 || got[1] != "mean" {
		t.Fatalf("rungs %v, want the ensemble after the tiers", got)
	}
	if err := l.R.Warmup(context.Background()); err != nil || ens.warmed != 1 {
		t.Fatalf("Warmup: %v, %d calls to the ensemble's; want one", err, ens.warmed)
	}
	l.Primary.Set(chaos.Fault{ErrorRate: 1})

	// when a request comes, then the ensemble answers, labelled as itself,
	a := l.Predict(t, 0)
	if a.Tier != "mean" || a.Kind != kindEnsemble || a.Position != 1 || !a.Degraded || a.Version != "mean-1" || len(a.Fell) != 1 {
		t.Fatalf("got %+v; want the ensemble's labelled answer", a)
	}
	// with the request's cache key and deadline budget at hand,
	if ens.key != cache.Key(l.In(0)) || ens.budget != time.Second {
		t.Errorf("the rung saw key %q and budget %v", ens.key, ens.budget)
	}
	// and its answers, not being a model tier's, are never cached.
	ens.fault = func() ([]tensor.Tensor, error) { return nil, errors.New("member down") }
	if a := l.Predict(t, 0); a.Tier != router.RungHeuristic || !errors.Is(a.Fell[2].Err, router.ErrNotCached) {
		t.Fatalf("got %+v; want the heuristic after a cache miss", a)
	}

	t.Run("its answers are validated", func(t *testing.T) {
		ens.fault = func() ([]tensor.Tensor, error) { return probability(float32(nanValue())), nil }
		if a := l.Predict(t, 1); a.Tier != router.RungHeuristic || !errors.Is(a.Fell[1].Err, router.ErrInvalidOutput) {
			t.Fatalf("got %+v; want the NaN refused", a)
		}
	})
	t.Run("its panics are recovered", func(t *testing.T) {
		ens.fault = func() ([]tensor.Tensor, error) { panic("ensemble bug") }
		var pe *router.PanicError
		if a := l.Predict(t, 1); a.Tier != router.RungHeuristic || !errors.As(a.Fell[1].Err, &pe) || pe.Tier != "mean" {
			t.Fatalf("got %+v; want the panic recovered into a fall", a)
		}
	})
	t.Run("requests can stop at it", func(t *testing.T) {
		ens.fault = func() ([]tensor.Tensor, error) { return nil, errors.New("member down") }
		_, err := l.R.Predict(context.Background(), l.In(1), router.LowestTier("mean"))
		var na *router.NoAnswerError
		if !errors.As(err, &na) || len(na.Falls) != 4 || !errors.Is(na.Falls[2].Err, router.ErrNotAccepted) {
			t.Fatalf("err = %v; want no answer, the rungs below not accepted", err)
		}
	})
	ens.fault = nil
}

func TestARungOfKindModelIsCached(t *testing.T) {
	testenv.MustHaveRuntime(t)
	ens := &mean{name: "mean", kind: router.KindModel, members: []router.Model{testenv.Load(t, "primary.onnx"), testenv.Load(t, "backup.onnx")}}
	// Given an ensemble that says its answers are model answers, placed
	// by Order after the tiers,
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		c.Rungs = []router.Rung{ens}
		c.Order = []string{"primary", "backup", "mean", router.RungCache, router.RungHeuristic}
	})
	l.Primary.Set(chaos.Fault{ErrorRate: 1})
	l.Backup.Set(chaos.Fault{ErrorRate: 1})
	// when it serves and later fails,
	served := l.Predict(t, 0)
	ens.fault = func() ([]tensor.Tensor, error) { return nil, errors.New("member down") }
	defer func() { ens.fault = nil }()
	// then its answer is the last good one, from its origin.
	var a router.Answer
	testenv.Eventually(t, "the cache serves", func() bool { // Offer's write lands within about 1ms
		a = l.Predict(t, 0)
		return a.Tier == router.RungCache
	})
	if a.Tier != router.RungCache || a.Origin != "mean" || a.Version != "mean-1" ||
		a.Outputs[0].Data.([]float32)[0] != served.Outputs[0].Data.([]float32)[0] {
		t.Fatalf("got %+v; want the ensemble's cached answer", a)
	}
}

func TestARungsNameIsItsOwn(t *testing.T) {
	model := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return probability(0.5), nil })
	for name, rungs := range map[string][]router.Rung{
		"a built-in name": {&mean{name: router.RungCache, kind: kindEnsemble}},
		"a tier's name":   {&mean{name: "primary", kind: kindEnsemble}},
		"twice":           {&mean{name: "m", kind: kindEnsemble}, &mean{name: "m", kind: kindEnsemble}},
		"no name":         {&mean{kind: kindEnsemble}},
		"no kind":         {&mean{name: "m"}},
		"nil":             {nil},
	} {
		_, err := router.New(router.Config{Tiers: []router.Tier{{Name: "primary", Model: model}}, Rungs: rungs})
		if !errors.Is(err, router.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// rungOf is a custom rung whose Name and Kind can misbehave.
type rungOf struct {
	name func() string
	kind router.Kind
}

func (g *rungOf) Name() string      { return g.name() }
func (g *rungOf) Kind() router.Kind { return g.kind }
func (g *rungOf) Serve(context.Context, router.Request) (router.Answer, error) {
	return router.Answer{Outputs: []tensor.Tensor{tensor.New("y", []int64{1}, []float32{1})}}, nil
}

func TestNewRefusesCustomRungsThatCannotDescribeThemselves(t *testing.T) {
	var typedNil *rungOf
	for name, tc := range map[string]struct {
		rung router.Rung
		want error
	}{
		"a nil pointer":          {typedNil, router.ErrInvalidConfig},
		"a Name that panics":     {&rungOf{name: func() string { panic("no name") }, kind: "x"}, router.ErrPanic},
		"no Kind":                {&rungOf{name: func() string { return "x" }}, router.ErrInvalidConfig},
		"a built-in's name":      {&rungOf{name: func() string { return "heuristic" }, kind: "x"}, router.ErrInvalidConfig},
		"a name taken by a tier": {&rungOf{name: func() string { return "m" }, kind: "x"}, router.ErrInvalidConfig},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := router.New(router.Config{Tiers: []router.Tier{{Name: "m", Model: router.ModelFunc(answerY)}}, Rungs: []router.Rung{tc.rung}})
			if !errors.Is(err, router.ErrInvalidConfig) || !errors.Is(err, tc.want) {
				t.Fatalf("New = %v, want %v", err, tc.want)
			}
		})
	}
}
