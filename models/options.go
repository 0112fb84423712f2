package models

import "github.com/ladder-ml/ladder/tensor"

// Optimization is ONNX Runtime's graph optimisation level.
type Optimization int

// Graph optimisation levels. The zero value is [OptimizeAll].
const (
	OptimizeAll      Optimization = iota // every optimisation (default)
	OptimizeExtended                     // basic plus extended fusions
	OptimizeBasic                        // constant folding and redundant-node removal
	OptimizeNone                         // run the graph as written
)

// Options tunes how a model is loaded. The zero value is ready to use.
type Options struct {
	// Name labels the model in errors and provenance. The default is the
	// file name without its extension, or "model" for [LoadBytes].
	Name string

	// IntraOpThreads is the number of threads ONNX Runtime may use inside
	// one operator. The default is 1: ladder serves many small concurrent
	// requests, and one thread per run avoids the thread hand-offs and
	// oversubscription that cost more than they save on small models. Raise
	// it for large models served at low concurrency. More than
	// [MaxThreads] is an error.
	IntraOpThreads int

	// InterOpThreads is the number of threads ONNX Runtime may use to run
	// independent operators in parallel. The default is 1, for the same
	// reason as IntraOpThreads. More than [MaxThreads] is an error.
	InterOpThreads int

	// Optimization is the graph optimisation level. The default is
	// [OptimizeAll]; a value that is none of the four levels is an error.
	Optimization Optimization

	// WarmupInputs are example inputs that [Model.Warmup] runs the model
	// on. Give them when the model needs real values, such as a sample
	// rate or token ids. They must fit the model's inputs: [Load] checks
	// them and keeps a copy. The default is inputs with every dynamic
	// dimension set to 1 and every number set to 1 (see [Model.Warmup]).
	WarmupInputs []tensor.Tensor
}

// MaxThreads bounds [Options.IntraOpThreads] and [Options.InterOpThreads]:
// ONNX Runtime creates its thread pools when a model loads, and crashes
// the process when it cannot create the threads it was told to.
const MaxThreads = 1024
