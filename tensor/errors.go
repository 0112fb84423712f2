package tensor

import (
	"errors"
	"fmt"
)

// ErrInvalidInput matches every [*InputError]: the caller sent inputs that
// do not fit a signature. It is the caller's fault, is deterministic, and
// must never be retried or blamed on a model. Its text is part of the API.
var ErrInvalidInput = errors.New("tensor: invalid input")

// InputError reports an input that does not fit a signature. It names the
// input, the problem, and what is expected.
type InputError struct {
	Model    string // name of the model or ladder whose signature refused the input
	Input    string // name of the offending input, or "" for the input list
	Problem  string // what is wrong, e.g. "wrong element type"
	Expected string // what the signature expects
	Got      string // what the caller sent
}

func (e *InputError) Error() string {
	where := "inputs"
	if e.Input != "" {
		where = fmt.Sprintf("input %q", e.Input)
	}
	return fmt.Sprintf("tensor: invalid input to %s: %s: %s: expected %s, got %s",
		e.Model, where, e.Problem, e.Expected, e.Got)
}

// Is reports whether target is [ErrInvalidInput].
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }
