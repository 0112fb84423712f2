package chaos_test

import (
	"context"
	"slices"
	"testing"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/router/routertest"
	"github.com/ladder-ml/ladder/tensor"
)

// TestAFaultyWithNoFaultIsATransparentWrapper runs routertest's checks of
// a wrapper on a Faulty injecting nothing: it forwards what the router
// reads of the inner model, whatever the inner model can do.
func TestAFaultyWithNoFaultIsATransparentWrapper(t *testing.T) {
	routertest.TestWrapper(t, func(_ *testing.T, inner router.Model) router.Model {
		return chaos.Wrap(inner, chaos.Fault{}, chaos.WithSeed(1))
	})
}

// TestAFaultyAroundAnONNXModelConforms runs routertest's checks of a
// router.Model on a Faulty around a real ONNX model, and around a plain
// function.
func TestAFaultyAroundAnONNXModelConforms(t *testing.T) {
	in := []tensor.Tensor{tensor.New("features", []int64{1, 30}, slices.Repeat([]float32{0.5}, 30))}
	t.Run("an ONNX model", func(t *testing.T) {
		routertest.TestModel(t, func(t *testing.T) router.Model {
			return chaos.Wrap(testenv.Load(t, "primary.onnx"), chaos.Fault{})
		}, routertest.Options{Inputs: in})
	})
	t.Run("a function", func(t *testing.T) {
		half := chaos.Func(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if len(in) != 1 || in[0].DType() != tensor.Float32 || in[0].Len() == 0 {
				return nil, tensor.ErrInvalidInput
			}
			return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.5})}, nil
		})
		routertest.TestModel(t, func(*testing.T) router.Model { return chaos.Wrap(half, chaos.Fault{}) },
			routertest.Options{Inputs: in})
	})
}
