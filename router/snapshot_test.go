package router_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

func TestReplacingATierKeepsItsBreakerByName(t *testing.T) {
	testenv.MustHaveRuntime(t)
	// (Models are loaded before the ladder, so they are closed after its
	// after-scenario check.)
	healed := chaos.Wrap(testenv.Load(t, "primary.onnx"), chaos.Fault{})
	// Given a primary whose breaker opened during an outage,
	var ev testenv.Events
	l := newLadder(t, "primary.onnx", func(c *router.Config) { c.OnEvent = ev.Add })
	l.Primary.Set(chaos.Fault{ErrorRate: 1})
	l.OpenBreakers(t, "primary")

	// when its model is replaced by a healthy one, with the same policy,
	if err := router.ReplaceTier(l.R, router.Tier{Name: "primary", Model: healed, Policy: testenv.Fast}); err != nil {
		t.Fatal(err)
	}
	l.Primary = healed // for newLadder's after-scenario check

	// then the breaker is still open: the new model is not tried until
	// OpenFor passes,
	if h := l.R.Health()["primary"]; h.State != policy.Open {
		t.Fatalf("primary %v after the swap, want the breaker still open", h)
	}
	a := l.Predict(t, 0)
	if a.Tier != "backup" || !errors.Is(a.Fell[0].Err, policy.ErrOpen) || healed.Calls() != 0 {
		t.Fatalf("got %+v with %d calls to the new model; want the primary skipped", a, healed.Calls())
	}
	// and then the probes reach the new model, which serves again.
	l.Clock.Advance(testenv.Fast.OpenFor)
	for i := 0; ; i++ {
		if a := l.Predict(t, i); a.Tier == "primary" && l.R.Health()["primary"].State == policy.Closed {
			break
		}
		if i == 20 {
			t.Fatalf("the new model did not close the breaker: %v", l.R.Health()["primary"])
		}
	}
	// Its breaker changes are reported at the tier's position.
	changes := ev.Of(router.BreakerChanged)
	if last := changes[len(changes)-1]; last.Tier != "primary" || last.Position != 0 || last.Breaker.To != policy.Closed {
		t.Errorf("last breaker event %+v, want primary at 0 closing", last)
	}
}

func TestReplacingATierWithAnotherPolicyStartsAFreshBreaker(t *testing.T) {
	testenv.MustHaveRuntime(t)
	healed := chaos.Wrap(testenv.Load(t, "primary.onnx"), chaos.Fault{})
	l := newLadder(t, "primary.onnx")
	l.Primary.Set(chaos.Fault{ErrorRate: 1})
	l.OpenBreakers(t, "primary")
	slower := testenv.Fast
	slower.Timeout = 80 * time.Millisecond
	if err := router.ReplaceTier(l.R, router.Tier{Name: "primary", Model: healed, Policy: slower}); err != nil {
		t.Fatal(err)
	}
	l.Primary = healed
	if a := l.Predict(t, 0); a.Tier != "primary" || l.R.Health()["primary"].State != policy.Closed {
		t.Fatalf("got %+v, health %v; want the new tier serving with a closed breaker", a, l.R.Health()["primary"])
	}
}

func TestRequestsInFlightFinishOnTheLadderTheyStarted(t *testing.T) {
	testenv.MustHaveRuntime(t)
	replacement := chaos.Wrap(testenv.Load(t, "primary.onnx"), chaos.Fault{})
	// Given an old primary that holds one marked request until released,
	var ev testenv.Events
	entered, release := make(chan struct{}), make(chan struct{})
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		inner := c.Tiers[0].Model
		c.Tiers[0].Model = router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			if in[0].Data.([]float32)[29] == -1 {
				close(entered)
				<-release
			}
			return inner.Predict(ctx, in)
		})
		c.Tiers[0].Version = "old"
		c.Tiers[0].Policy.Timeout = 5 * time.Second
		c.OnEvent = ev.Add
	})
	marked := append([]float32(nil), l.Rows[0]...)
	marked[29] = -1
	type result struct {
		a   router.Answer
		err error
	}
	done := make(chan result)
	go func() {
		a, err := l.R.Predict(context.Background(), []tensor.Tensor{tensor.New("features", []int64{1, 30}, marked)})
		done <- result{a, err}
	}()
	<-entered

	// when the primary is replaced while that request is in the old model,
	if err := router.ReplaceTier(l.R, router.Tier{Name: "primary", Model: replacement, Version: "new", Policy: testenv.Fast}); err != nil {
		t.Fatal(err)
	}
	l.Primary = replacement
	// then new requests are served by the new model,
	if a := l.Predict(t, 1); a.Tier != "primary" || a.Version != "new" || replacement.Calls() != 1 {
		t.Fatalf("got %+v after %d calls to the new model; want the new model", a, replacement.Calls())
	}
	// and the request in flight finishes on the old one, with its label.
	close(release)
	r := <-done
	if r.err != nil || r.a.Tier != "primary" || r.a.Version != "old" {
		t.Fatalf("in-flight request got %+v, %v; want the old model's answer", r.a, r.err)
	}
	// The same rung serving on both ladders is no switch.
	if n := len(ev.Of(router.Switched)); n != 0 {
		t.Errorf("%d switch events, want none", n)
	}
}

func TestAReplacementThatBreaksTheContractIsRefused(t *testing.T) {
	testenv.MustHaveRuntime(t)
	l := newLadder(t, "primary.onnx")
	other := sigModel{
		sig: tensor.Signature{
			Inputs:  []tensor.Info{{Name: "features", DType: tensor.Float32, Shape: []int64{-1, 30}}},
			Outputs: []tensor.Info{{Name: "score", DType: tensor.Float32, Shape: []int64{-1, 1}}},
		},
		fn: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return nil, errors.New("unused") },
	}
	// Given a backup replaced by a model that returns other outputs, then
	// the replacement is refused and the ladder is unchanged.
	if err := router.ReplaceTier(l.R, router.Tier{Name: "backup", Model: other}); !errors.Is(err, router.ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	if err := router.ReplaceTier(l.R, router.Tier{Name: "nope", Model: l.Backup}); !errors.Is(err, router.ErrInvalidConfig) {
		t.Fatalf("replacing an unknown tier: err = %v, want ErrInvalidConfig", err)
	}
	l.Primary.Set(chaos.Fault{ErrorRate: 1})
	if a := l.Predict(t, 0); a.Tier != "backup" {
		t.Fatalf("served by %s, want the original backup", a.Tier)
	}
}

func TestSwapsUnderLoad(t *testing.T) {
	testenv.MustHaveRuntime(t)
	other := chaos.Wrap(testenv.Load(t, "primary.onnx"), chaos.Fault{})
	// Given requests flowing,
	l := newLadder(t, "primary.onnx")
	models := []*chaos.Faulty{l.Primary, other}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var served atomic.Int64
	for g := range 2 {
		wg.Go(func() {
			for i := g; ctx.Err() == nil; i += 2 {
				a, err := l.R.Predict(ctx, l.In(i))
				served.Add(1)
				if err != nil && ctx.Err() == nil {
					t.Errorf("Predict: %v", err)
					return
				} else if err == nil && a.Tier != "primary" {
					t.Errorf("served by %s during swaps, want the primary", a.Tier)
					return
				}
			}
		})
	}
	// when the primary is swapped back and forth, by two goroutines at
	// once,
	var swaps sync.WaitGroup
	for g := range 2 {
		swaps.Go(func() {
			for i := range 10 {
				if err := router.ReplaceTier(l.R, router.Tier{Name: "primary", Model: models[(g+i)%2], Policy: testenv.Fast}); err != nil {
					t.Error(err)
					return
				}
				// Requests run on each ladder before the next swap.
				for n, deadline := served.Load(), time.Now().Add(10*time.Second); served.Load() < n+2 && time.Now().Before(deadline); {
					runtime.Gosched()
				}
			}
		})
	}
	swaps.Wait()
	cancel()
	wg.Wait()
	// then every request was answered by a primary: no request saw half a
	// ladder (and -race sees no data race).
	if models[0].Calls() == 0 || models[1].Calls() == 0 {
		t.Errorf("calls %d and %d, want both models used", models[0].Calls(), models[1].Calls())
	}
}
