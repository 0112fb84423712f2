package cache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/tensor"
)

func Example() {
	store, err := cache.New(cache.Config{MaxEntries: 1000, TTL: 5 * time.Minute})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	inputs := []tensor.Tensor{
		tensor.New("features", []int64{1, 3}, []float32{14.2, 20.1, 92.0}),
	}
	key := cache.Key(inputs)
	ctx := context.Background()

	// After the primary model answers and its answer passes validation:
	store.Put(ctx, key, cache.Entry{
		Outputs: []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.93})},
		Tier:    "primary",
		Version: "3",
	})

	// Later, when every model tier fails for the same inputs:
	if e, found, err := store.Get(ctx, key); found && err == nil {
		p, _ := tensor.Data[float32](e.Outputs[0])
		fmt.Printf("last good answer from %s v%s: %.2f\n", e.Tier, e.Version, p[0])
	}
	// Output:
	// last good answer from primary v3: 0.93
}
