// Package chaos injects faults into a model on purpose, to prove that
// failover works.
//
// [Wrap] puts a [Faulty] around any [Model], usually a real ONNX model, and
// a [Fault] says what goes wrong: errors at a rate, an outage that starts
// and ends or flaps, added latency or a slow tail, calls that hang until
// their context is done, NaN outputs, and panics. [Faulty.Set] changes the
// fault while requests flow, so a test can break the primary mid-run and
// watch the ladder fall to the backup and climb back:
//
//	primary := chaos.Wrap(model, chaos.Fault{}, chaos.WithSeed(1))
//	r, err := router.New(router.Config{Tiers: []router.Tier{
//		{Name: "primary", Model: primary},
//		{Name: "backup", Model: backup},
//	}})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer r.Close()
//	predict(r)
//	primary.Set(chaos.Fault{ErrorRate: 1}) // the primary is down
//	predict(r)                             // the backup serves
//	primary.Set(chaos.Fault{})             // and back
//	predict(r)
//
// Every injected error wraps [ErrInjected], and an injected panic panics
// with [ErrPanic], which also matches ErrInjected under [errors.Is]. A call
// that hangs or sleeps returns the context's own error when the context is
// done.
//
// # Order of faults
//
// A call meets the faults of one [Fault] in this order, and the first one
// that ends the call wins:
//
//  1. HangRate: block until ctx is done.
//  2. DownFor and UpFor: fail with ErrInjected inside a down window.
//  3. ErrorRate: fail with ErrInjected.
//  4. PanicRate: panic with ErrPanic.
//  5. Latency and SlowRate: sleep, then call the inner model.
//  6. NaNRate: replace the floats of the inner model's outputs with NaN.
//
// So injected failures are fast. For a model that is slow and then fails,
// wrap twice: the outer [Faulty] adds latency, the inner one fails.
//
// # Reproducible runs
//
// The random draws of a call depend only on the seed and on the call's
// place in the sequence of calls to its [Faulty]. With [WithSeed], the same
// number of calls injects the same number of each fault, whatever the
// number of goroutines making them. Without it each Faulty picks a random
// seed, so two wrapped models with the same rates do not fail on the same
// calls.
//
// Outages and injected latency are timed by a clock that [WithClock]
// replaces, so a test can step through a flap, or end a delay, by
// advancing a [clock.Fake] instead of sleeping.
package chaos
