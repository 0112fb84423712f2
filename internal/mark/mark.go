// Package mark holds the marks that policy.Permanent and policy.Uncounted
// put on an error, so that the router's executor can read them while the
// policy package exports only what users configure.
//
// Reading a mark is an errors.Is against a sentinel, which allocates
// nothing, unlike errors.As.
package mark

import "errors"

// The marks, matched by the marking errors' Is methods.
var (
	// ErrPermanent matches an error marked permanent or uncounted: not worth
	// retrying on the same tier.
	ErrPermanent = errors.New("policy: permanent")
	// ErrUncounted matches an error the breaker must not count.
	ErrUncounted = errors.New("policy: uncounted")
)

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

type uncountedError struct{ err error }

func (e *uncountedError) Error() string { return e.err.Error() }
func (e *uncountedError) Unwrap() error { return e.err }
func (e *uncountedError) Is(target error) bool {
	return target == ErrUncounted || target == ErrPermanent
}

// AsPermanent marks err [ErrPermanent]; nil stays nil.
func AsPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// AsUncounted marks err [ErrUncounted] and [ErrPermanent]; nil stays nil.
func AsUncounted(err error) error {
	if err == nil {
		return nil
	}
	return &uncountedError{err}
}

// IsPermanent reports whether err carries the [ErrPermanent] mark.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// IsUncounted reports whether err carries the [ErrUncounted] mark.
func IsUncounted(err error) bool { return errors.Is(err, ErrUncounted) }
