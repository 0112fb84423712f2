package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// A model that goes down for a minute and then recovers, on a clock the
// example turns by hand.
func Example() {
	model := chaos.Func(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return []tensor.Tensor{tensor.New("score", []int64{1}, []float32{0.9})}, nil
	})
	clk := clock.NewFake(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC))

	primary := chaos.Wrap(model, chaos.Fault{DownFor: time.Minute}, chaos.WithClock(clk))
	predict := func() {
		out, err := primary.Predict(context.Background(), nil)
		if errors.Is(err, chaos.ErrInjected) {
			fmt.Println(clk.Now().Format(time.TimeOnly), "down:", err)
			return
		}
		score, _ := tensor.Data[float32](out[0])
		fmt.Println(clk.Now().Format(time.TimeOnly), "up:", score)
	}

	predict()
	clk.Advance(time.Minute)
	predict()

	primary.Set(chaos.Fault{NaNRate: 1}) // now it answers garbage
	predict()
	// Output:
	// 12:00:00 down: chaos: injected failure: model down
	// 12:01:00 up: [0.9]
	// 12:01:00 up: [NaN]
}

// The same seed fails the same calls, so a chaos run can be repeated.
func ExampleWithSeed() {
	model := chaos.Func(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, nil
	})
	for range 2 {
		m := chaos.Wrap(model, chaos.Fault{ErrorRate: 0.25}, chaos.WithSeed(1))
		for range 1000 {
			m.Predict(context.Background(), nil)
		}
		fmt.Printf("%d of %d calls failed\n", m.Injected(), m.Calls())
	}
	// Output:
	// 252 of 1000 calls failed
	// 252 of 1000 calls failed
}

// Break the primary mid-run and watch the ladder fall to the backup and
// climb back.
func Example_failover() {
	score := func(p float32) router.ModelFunc {
		return func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{p})}, nil
		}
	}
	model, backup := score(0.9), score(0.8)
	predict := func(r *router.Router) {
		a, err := r.Predict(context.Background(), []tensor.Tensor{tensor.New("features", []int64{1, 1}, []float32{1})})
		fmt.Println(a.Tier, a.Degraded, err)
	}

	primary := chaos.Wrap(model, chaos.Fault{}, chaos.WithSeed(1))
	r, err := router.New(router.Config{Tiers: []router.Tier{
		{Name: "primary", Model: primary},
		{Name: "backup", Model: backup},
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	predict(r)
	primary.Set(chaos.Fault{ErrorRate: 1}) // the primary is down
	predict(r)                             // the backup serves
	primary.Set(chaos.Fault{})             // and back
	predict(r)
	// Output:
	// primary false <nil>
	// backup true <nil>
	// primary false <nil>
}
