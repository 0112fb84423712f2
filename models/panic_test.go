package models

import (
	"context"
	"errors"
	"testing"

	"github.com/ladder-ml/ladder/tensor"
	ort "github.com/yalue/onnxruntime_go"
)

// A panic inside onnxruntime_go, here provoked by a nil tensor planted in
// the scratch pool, is recovered into a PanicError; the scratch is thrown
// away and the model keeps serving.
func TestPanicIsRecoveredAndScratchDiscarded(t *testing.T) {
	if !ort.IsInitialized() {
		t.Skip("ONNX Runtime not available")
	}
	m, err := Load("../testdata/primary.onnx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := []tensor.Tensor{tensor.New("features", []int64{1, 30}, make([]float32, 30))}
	ctx, cancel := context.WithCancel(context.Background()) // a watched run
	defer cancel()
	if _, err := m.Predict(ctx, in); err != nil {
		t.Fatal(err)
	}
	s, err := m.getScratch()
	if err != nil {
		t.Fatal(err)
	}
	_ = release(s.ins[0])
	s.ins[0] = (*ort.Tensor[float32])(nil)
	m.putScratch(s)

	_, err = m.Predict(ctx, in)
	var pe *PanicError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPanic) || len(pe.Stack) == 0 {
		t.Fatalf("err = %v, want a PanicError with a stack", err)
	}
	for range 3 {
		if _, err := m.Predict(ctx, in); err != nil {
			t.Fatalf("Predict after a recovered panic: %v", err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// release takes onnxruntime_go's typed nil values, which it leaves behind
// when it fails to convert an output, without panicking.
func TestReleaseTypedNil(t *testing.T) {
	var v ort.Value = (*ort.Tensor[float32])(nil)
	if err := release(v); err != nil {
		t.Fatalf("release(typed nil) = %v", err)
	}
	if err := release(nil); err != nil {
		t.Fatalf("release(nil) = %v", err)
	}
}
