//go:build cgo

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

// A native input that cannot be built leaves its slot empty, not a nil
// value that the next run or destroy would call (defect 2).
func TestFailedInputLeavesNoNilValue(t *testing.T) {
	if !ort.IsInitialized() {
		t.Skip("ONNX Runtime not available")
	}
	s, err := newScratch(2, 1)
	if err != nil {
		t.Fatal(err)
	}
	s.ordered[0] = tensor.New("a", []int64{2}, []float32{1, 2})
	s.ordered[1] = tensor.Tensor{Name: "b", Shape: []int64{1}, Data: []complex64{1}}
	if _, err := s.setInputs(); err == nil {
		t.Fatal("setInputs built a complex64 tensor")
	}
	if s.ins[1] != nil || s.inShapes[1] != nil {
		t.Fatalf("failed slot holds %#v", s.ins[1])
	}
	s.ordered[1] = tensor.Scalar("b", int64(3))
	if same, err := s.setInputs(); err != nil || same {
		t.Fatalf("setInputs after a failure = %v, %v", same, err)
	}
	if err := s.destroy(); err != nil {
		t.Fatalf("destroy: %v", err)
	}
}
