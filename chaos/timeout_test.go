package chaos_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/tensor"
)

func TestPredictTimeoutReturnsAtTheTimeoutAroundAModelThatIgnoresCtx(t *testing.T) {
	// Given a Faulty around a model that ignores ctx and hangs
	release := make(chan struct{})
	defer close(release)
	f := chaos.Wrap(chaos.Func(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		<-release
		return fixed.Predict(context.Background(), nil)
	}), chaos.Fault{})

	// When it is called with a timeout
	done := make(chan error, 1)
	go func() {
		_, err := f.PredictTimeout(context.Background(), 10*time.Millisecond, nil)
		done <- err
	}()

	// Then it returns, timed out, while the model still runs
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("PredictTimeout = %v; want an error matching context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PredictTimeout(10ms) has not returned after 10s")
	}
	if f.Reached() != 1 {
		t.Errorf("Reached = %d; want 1", f.Reached())
	}
}

func TestPredictTimeoutRaisesThePanicOfAModelWithoutATimeoutOfItsOwn(t *testing.T) {
	// Given a Faulty around a plain model that panics
	f := chaos.Wrap(chaos.Func(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		panic("boom")
	}), chaos.Fault{})

	// When it is called with a timeout, then the panic reaches the caller,
	// as it does from Predict, for the router to recover
	defer func() {
		if v := recover(); v != "boom" {
			t.Fatalf("recovered %v; want the model's panic", v)
		}
	}()
	f.PredictTimeout(context.Background(), time.Minute, nil)
	t.Fatal("PredictTimeout returned")
}
