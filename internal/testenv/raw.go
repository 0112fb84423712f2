//go:build cgo

package testenv

import (
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// The raw onnxruntime_go baselines call ONNX Runtime directly, which needs
// cgo, as package models does.

// BenchmarkRaw runs file through onnxruntime_go directly, with reused input
// and output tensors and one thread: the baseline sub-benchmark the
// packages' overhead benchmarks compare against. The model must take
// "features" float32 [1,30] and give "probability" float32 [1,1].
func BenchmarkRaw(b *testing.B, file string, row []float32) {
	run, free := Raw(b, file, row)
	defer free()
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}

// Raw returns one call of [BenchmarkRaw]'s loop, for a benchmark that
// interleaves it with other calls, and a func that frees the session.
func Raw(b *testing.B, file string, row []float32) (run, free func()) {
	s := rawSession(b, file)
	ins, outs, freeTensors := rawTensors(b, row)
	run = func() {
		if err := s.Run(ins, outs); err != nil {
			b.Fatal(err)
		}
	}
	return run, func() { freeTensors(); s.Destroy() }
}

// RawRunners returns n calls like [Raw]'s, sharing one session as a
// server shares one, each with tensors of its own so that they may run
// at once, and a func that frees them.
func RawRunners(b *testing.B, file string, row []float32, n int) (runs []func(), free func()) {
	s := rawSession(b, file)
	frees := []func(){func() { s.Destroy() }}
	for range n {
		ins, outs, freeTensors := rawTensors(b, row)
		frees = append(frees, freeTensors)
		runs = append(runs, func() {
			if err := s.Run(ins, outs); err != nil {
				b.Error(err)
			}
		})
	}
	return runs, func() {
		for i := len(frees) - 1; i >= 0; i-- {
			frees[i]()
		}
	}
}

// BenchmarkRawParallel is [BenchmarkRaw] from b.RunParallel at
// [Parallelism] goroutines per processor: one session shared by every
// goroutine, as a server shares one, and reused tensors per goroutine.
// It is the baseline of the packages' parallel overhead benchmarks.
func BenchmarkRawParallel(b *testing.B, file string, row []float32) {
	s := rawSession(b, file)
	defer s.Destroy()
	b.ReportAllocs()
	b.SetParallelism(Parallelism)
	b.RunParallel(func(pb *testing.PB) {
		ins, outs, free := rawTensors(b, row)
		defer free()
		for pb.Next() {
			if err := s.Run(ins, outs); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// rawSession opens file in onnxruntime_go with one thread.
func rawSession(b *testing.B, file string) *ort.DynamicAdvancedSession {
	so, err := ort.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	defer so.Destroy()
	so.SetIntraOpNumThreads(1)
	so.SetInterOpNumThreads(1)
	s, err := ort.NewDynamicAdvancedSession(Testdata(file), []string{"features"}, []string{"probability"}, so)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// rawTensors makes the input tensor holding row and the output tensor of
// one run, and a func that frees them.
func rawTensors(b *testing.B, row []float32) (ins, outs []ort.Value, free func()) {
	in, err := ort.NewTensor(ort.NewShape(1, 30), append([]float32(nil), row...))
	if err != nil {
		b.Fatal(err)
	}
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(1, 1))
	if err != nil {
		in.Destroy()
		b.Fatal(err)
	}
	return []ort.Value{in}, []ort.Value{out}, func() { in.Destroy(); out.Destroy() }
}
