package reload

import (
	"context"
	"errors"
	"fmt"

	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// Labelled is one example of a labelled sample for [AccuracyAtLeast]: an
// input, and a judge of the model's answer to it.
type Labelled struct {
	// Inputs are given to the model as a request's would be.
	Inputs []tensor.Tensor
	// Correct reports whether outputs are the right answer for Inputs,
	// e.g. whether a probability falls on the side of 0.5 its label is on.
	Correct func(outputs []tensor.Tensor) bool
}

// ErrAccuracy matches every [*AccuracyError].
var ErrAccuracy = errors.New("reload: accuracy below the threshold")

// AccuracyError reports a model whose accuracy on a labelled sample is
// below the threshold.
type AccuracyError struct {
	Accuracy float64 // the share of the sample answered correctly
	Min      float64 // the share required
	Correct  int     // examples answered correctly
	N        int     // examples in the sample
}

func (e *AccuracyError) Error() string {
	return fmt.Sprintf("%v: %.4f (%d of %d) < %.4f", ErrAccuracy, e.Accuracy, e.Correct, e.N, e.Min)
}

// Is reports whether target is [ErrAccuracy].
func (e *AccuracyError) Is(target error) bool { return target == ErrAccuracy }

// AccuracyAtLeast returns a check for [Config].Validate: the model must
// answer at least min of sample correctly. An error of the model counts as
// a wrong answer; ctx's end stops the check with ctx's error. The check
// fails with an [*AccuracyError].
func AccuracyAtLeast(min float64, sample []Labelled) func(ctx context.Context, m router.Model) error {
	return func(ctx context.Context, m router.Model) error {
		correct := 0
		for _, s := range sample {
			if err := ctx.Err(); err != nil {
				return err
			}
			out, err := m.Predict(ctx, s.Inputs)
			if err == nil && s.Correct(out) {
				correct++
			}
		}
		acc := 0.0
		if len(sample) > 0 {
			acc = float64(correct) / float64(len(sample))
		}
		if acc < min {
			return &AccuracyError{Accuracy: acc, Min: min, Correct: correct, N: len(sample)}
		}
		return nil
	}
}
