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
	// Permanent matches an error marked permanent or uncounted: not worth
	// retrying on the same tier.
	Permanent = errors.New("policy: permanent")
	// Uncounted matches an error the breaker must not count.
	Uncounted = errors.New("policy: uncounted")
)

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == Permanent }

type uncountedError struct{ err error }

func (e *uncountedError) Error() string { return e.err.Error() }
func (e *uncountedError) Unwrap() error { return e.err }
func (e *uncountedError) Is(target error) bool {
	return target == Uncounted || target == Permanent
}

// AsPermanent marks err [Permanent]; nil stays nil.
func AsPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// AsUncounted marks err [Uncounted] and [Permanent]; nil stays nil.
func AsUncounted(err error) error {
	if err == nil {
		return nil
	}
	return &uncountedError{err}
}

// IsPermanent reports whether err carries the [Permanent] mark.
func IsPermanent(err error) bool { return errors.Is(err, Permanent) }

// IsUncounted reports whether err carries the [Uncounted] mark.
func IsUncounted(err error) bool { return errors.Is(err, Uncounted) }
