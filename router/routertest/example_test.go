package routertest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/router/routertest"
	"github.com/ladder-ml/ladder/tensor"
)

// counting is a wrapper as one might first write it: it counts the calls
// to the model it wraps, and is a router.Unwrapper, so that
// router.SignatureOf and router.VersionOf see through it. It forgets
// PredictTimeout, Warmup and Close.
type counting struct {
	m     router.Model
	calls atomic.Int64
}

func (c *counting) Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	c.calls.Add(1)
	return c.m.Predict(ctx, inputs)
}

func (c *counting) Unwrap() router.Model { return c.m }

// A wrapper's own test runs routertest.TestWrapper; CheckWrapper returns
// what the suite finds instead of failing a test.
func ExampleCheckWrapper() {
	err := routertest.CheckWrapper(func(inner router.Model) router.Model { return &counting{m: inner} })

	check := ""
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var f *routertest.Failure
		if !errors.As(e, &f) {
			continue
		}
		if f.Check != check {
			check = f.Check
			fmt.Println(check)
		}
		problem, _, _ := strings.Cut(f.Problem, ":")
		fmt.Println("	" + problem)
	}
	// Output:
	// around a model with every capability/it forwards the capabilities of the model it wraps
	// 	the model it wraps is a router.TimeoutPredictor and it is not
	// 	the model it wraps is a router.Warmer and it is not
	// 	the model it wraps is an io.Closer and it is not
}

// newMyModel and inputs stand for a model of one's own and inputs it
// answers, in the package doc's example.
func newMyModel(*testing.T) router.Model { return router.ModelFunc(score) }

var inputs = features()

// TestMyModel is the package doc's example.
func TestMyModel(t *testing.T) {
	routertest.TestModel(t, func(t *testing.T) router.Model { return newMyModel(t) },
		routertest.Options{Inputs: inputs})
}
