package models_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/tensor"
)

// Given a model whose integer Div crashes ONNX Runtime on a zero divisor,
// when it is warmed up with the default inputs, then the process survives
// and the run answers 1/1 = 1: the default warm-up sends ones, not zeros.
func TestDefaultWarmupNeverDividesByZero(t *testing.T) {
	m := load(t, "int_div.onnx")
	if err := m.Warmup(context.Background()); err != nil {
		t.Fatalf("Warmup: %v", err)
	}
	out, err := m.Predict(context.Background(), []tensor.Tensor{
		tensor.New("a", []int64{2}, []int32{7, -9}),
		tensor.New("b", []int64{2}, []int32{2, 3}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if q, _ := tensor.Data[int32](out[0]); !slices.Equal(q, []int32{3, -3}) {
		t.Fatalf("q = %v, want [3 -3]", q)
	}
}

// Given the nil *Model a failed Load returns, when a caller uses it anyway
// (a deferred Close, a Predict before the error was checked), then every
// method answers like a closed model instead of panicking.
func TestNilModelBehavesClosed(t *testing.T) {
	m, err := models.Load("no-such-file.onnx", models.Options{})
	if err == nil || m != nil {
		t.Fatalf("Load = %v, %v; want nil and an error", m, err)
	}
	ctx := context.Background()
	in := []tensor.Tensor{tensor.Scalar("x", float32(1))}
	if _, err := m.Predict(ctx, in); !errors.Is(err, models.ErrClosed) {
		t.Errorf("Predict: %v, want ErrClosed", err)
	}
	if _, err := m.PredictTimeout(ctx, 0, in); !errors.Is(err, models.ErrClosed) {
		t.Errorf("PredictTimeout: %v, want ErrClosed", err)
	}
	if err := m.Warmup(ctx); !errors.Is(err, models.ErrClosed) {
		t.Errorf("Warmup: %v, want ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if sig := m.Signature(); len(sig.Inputs)+len(sig.Outputs) != 0 || m.Name() != "" || m.Version() != "" {
		t.Errorf("nil model reports %v %q %q", sig, m.Name(), m.Version())
	}
}

// A nil context is refused with an error, not a nil dereference.
func TestNilContextIsAnError(t *testing.T) {
	m := load(t, "primary.onnx")
	//lint:ignore SA1012 a nil context is what this test sends
	_, err := m.Predict(nil, []tensor.Tensor{tensor.New("features", []int64{1, 30}, make([]float32, 30))}) //nolint:staticcheck
	if err == nil {
		t.Fatal("Predict(nil ctx) succeeded")
	}
}
