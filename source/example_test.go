package source_test

import (
	"context"
	"fmt"

	"github.com/ladder-ml/ladder/source"
)

func ExampleLoad() {
	srcs := []source.Source{
		{Path: "/models/primary.onnx"},                // the local copy
		{Path: "/mnt/mirror/primary.onnx"},            // a mirror
		{Bytes: []byte("embedded"), Name: "embedded"}, // compiled in, last resort
	}
	// The loader would be models.LoadBytes; here it takes any bytes.
	load := func(b []byte) (int, error) { return len(b), nil }
	n, from, err := source.Load(context.Background(), srcs, source.Options{}, load, func(e *source.Error) {
		fmt.Println("passed over:", e.Source, e.Reason)
	})
	fmt.Println(n, from, err)
	// Output:
	// passed over: /models/primary.onnx missing
	// passed over: /mnt/mirror/primary.onnx missing
	// 8 embedded <nil>
}
