package cachetest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/cache/cachetest"
	"github.com/ladder-ml/ladder/tensor"
)

// mapStore is a correct store: a map of deep copies under a mutex. The
// broken stores below each get one thing wrong.
type mapStore struct {
	mu sync.Mutex
	m  map[string]cache.Entry
}

func newMapStore() *mapStore { return &mapStore{m: map[string]cache.Entry{}} }

func (s *mapStore) Get(ctx context.Context, key string) (cache.Entry, bool, error) {
	if err := ctx.Err(); err != nil {
		return cache.Entry{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	e.Outputs = tensor.CloneAll(e.Outputs)
	return e, ok, nil
}

func (s *mapStore) Put(ctx context.Context, key string, e cache.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.Outputs = tensor.CloneAll(e.Outputs)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = e
	return nil
}

// storeFuncs is a store made of two functions.
type storeFuncs struct {
	get func(ctx context.Context, key string) (cache.Entry, bool, error)
	put func(ctx context.Context, key string, e cache.Entry) error
}

func (s storeFuncs) Get(ctx context.Context, key string) (cache.Entry, bool, error) {
	return s.get(ctx, key)
}

func (s storeFuncs) Put(ctx context.Context, key string, e cache.Entry) error {
	return s.put(ctx, key, e)
}

// wrong returns a store that gets one thing wrong, by changing the
// correct store's Get, Put or both; a nil function is the correct one's.
func wrong(
	get func(s *mapStore, ctx context.Context, key string) (cache.Entry, bool, error),
	put func(s *mapStore, ctx context.Context, key string, e cache.Entry) error,
) func() cachetest.Store {
	return func() cachetest.Store {
		s := newMapStore()
		w := storeFuncs{get: s.Get, put: s.Put}
		if get != nil {
			w.get = func(ctx context.Context, key string) (cache.Entry, bool, error) { return get(s, ctx, key) }
		}
		if put != nil {
			w.put = func(ctx context.Context, key string, e cache.Entry) error { return put(s, ctx, key, e) }
		}
		return w
	}
}

// raw reads the correct store's entry as it is kept, sharing its memory.
func raw(s *mapStore, key string) (cache.Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	return e, ok
}

// keep stores e as given, sharing its memory.
func keep(s *mapStore, key string, e cache.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = e
}

// hang blocks until the process ends, whatever ctx says.
var hang = make(chan struct{})

// stores are the stores Run is run against, each with the check that must
// fail for it; "" means a correct store, for which none may.
var stores = map[string]struct {
	store func() cachetest.Store
	fails string
}{
	"a correct map":   {func() cachetest.Store { return newMapStore() }, ""},
	"the cache.Store": {nil, ""}, // made by the subtest, which closes it

	"keeps the caller's outputs on Put": {wrong(nil, func(s *mapStore, _ context.Context, key string, e cache.Entry) error {
		keep(s, key, e)
		return nil
	}), "entries are copies"},
	"copies the outputs list on Put but shares their data": {wrong(nil, func(s *mapStore, _ context.Context, key string, e cache.Entry) error {
		e.Outputs = append([]tensor.Tensor(nil), e.Outputs...)
		keep(s, key, e)
		return nil
	}), "entries are copies"},
	"shares the caller's shapes on Put": {wrong(nil, func(s *mapStore, _ context.Context, key string, e cache.Entry) error {
		outs := tensor.CloneAll(e.Outputs)
		for i := range outs {
			outs[i].Shape = e.Outputs[i].Shape
		}
		e.Outputs = outs
		keep(s, key, e)
		return nil
	}), "entries are copies"},
	"returns its own outputs from Get": {wrong(func(s *mapStore, _ context.Context, key string) (cache.Entry, bool, error) {
		e, ok := raw(s, key)
		return e, ok, nil
	}, nil), "entries are copies"},
	"returns its own shapes from Get": {wrong(func(s *mapStore, _ context.Context, key string) (cache.Entry, bool, error) {
		e, ok := raw(s, key)
		outs := tensor.CloneAll(e.Outputs)
		for i := range outs {
			outs[i].Shape = e.Outputs[i].Shape
		}
		e.Outputs = outs
		return e, ok, nil
	}, nil), "entries are copies"},
	"returns its own outputs list from Get": {wrong(func(s *mapStore, _ context.Context, key string) (cache.Entry, bool, error) {
		e, ok := raw(s, key)
		return e, ok, nil
	}, func(s *mapStore, _ context.Context, key string, e cache.Entry) error {
		// Deep copies in a list of the store's own, which Get hands out.
		e.Outputs = tensor.CloneAll(e.Outputs)
		keep(s, key, e)
		return nil
	}), "entries are copies"},

	"stamps the time of Put as Stored, so every entry looks fresh": {wrong(nil, func(s *mapStore, ctx context.Context, key string, e cache.Entry) error {
		e.Stored = time.Now()
		return s.Put(ctx, key, e)
	}), "an entry put is got back whole"},
	"stamps the time of Get as Stored": {wrong(func(s *mapStore, ctx context.Context, key string) (cache.Entry, bool, error) {
		e, ok, err := s.Get(ctx, key)
		e.Stored = time.Now()
		return e, ok, err
	}, nil), "an entry put is got back whole"},
	"keeps Stored to the second": {wrong(nil, func(s *mapStore, ctx context.Context, key string, e cache.Entry) error {
		e.Stored = e.Stored.Truncate(time.Second)
		return s.Put(ctx, key, e)
	}), "an entry put is got back whole"},
	"keeps the first Put of a key": {wrong(nil, func(s *mapStore, ctx context.Context, key string, e cache.Entry) error {
		if _, ok := raw(s, key); ok {
			return nil
		}
		return s.Put(ctx, key, e)
	}), "an entry put is got back whole"},

	"keeps one entry for every key": {wrong(func(s *mapStore, ctx context.Context, _ string) (cache.Entry, bool, error) {
		return s.Get(ctx, "")
	}, func(s *mapStore, ctx context.Context, _ string, e cache.Entry) error {
		return s.Put(ctx, "", e)
	}), "keys are apart"},
	"answers a key it has with the last entry put": {wrong(func(s *mapStore, ctx context.Context, key string) (cache.Entry, bool, error) {
		if _, ok := raw(s, key); !ok {
			return cache.Entry{}, false, nil
		}
		return s.Get(ctx, "last")
	}, func(s *mapStore, ctx context.Context, key string, e cache.Entry) error {
		keep(s, key, cache.Entry{})
		return s.Put(ctx, "last", e)
	}), "keys are apart"},
	"keys on the first 16 bytes": {wrong(func(s *mapStore, ctx context.Context, key string) (cache.Entry, bool, error) {
		return s.Get(ctx, key[:min(len(key), 16)])
	}, func(s *mapStore, ctx context.Context, key string, e cache.Entry) error {
		return s.Put(ctx, key[:min(len(key), 16)], e)
	}), "keys are apart"},

	"reports a missing key as an error": {wrong(func(s *mapStore, ctx context.Context, key string) (cache.Entry, bool, error) {
		e, ok, err := s.Get(ctx, key)
		if err == nil && !ok {
			err = errors.New("not found")
		}
		return e, ok, err
	}, nil), "a missing key is not found and no error"},

	"waits out a slow network whatever ctx says": {wrong(func(s *mapStore, ctx context.Context, key string) (cache.Entry, bool, error) {
		if ctx.Err() != nil { // the other checks' calls are quick, to keep the suite short
			// Real time is the point: the suite's bound is on the real
			// clock, and a slow network's wait is real. Three times the
			// bound fails the check however loaded the machine.
			time.Sleep(3 * within)
		}
		return s.Get(ctx, key)
	}, nil), "a call whose context is done returns promptly"},
	"hangs whatever ctx says": {wrong(nil, func(s *mapStore, ctx context.Context, key string, e cache.Entry) error {
		if ctx.Err() != nil {
			<-hang
		}
		return s.Put(ctx, key, e)
	}), "a call whose context is done returns promptly"},
	"hides the context's error": {wrong(func(s *mapStore, ctx context.Context, key string) (cache.Entry, bool, error) {
		e, ok, err := s.Get(ctx, key)
		if err != nil {
			err = fmt.Errorf("get: %v", err)
		}
		return e, ok, err
	}, nil), "a call whose context is done returns promptly"},
}

// within is how soon the stores that must fail the promptness check are
// asked to return, so that the check fails them sooner than the default.
const within = 100 * time.Millisecond

// storeEnv names the store that TestRunOnOneStore checks.
const storeEnv = "CACHETEST_STORE"

// TestRunFailsEachWrongStore runs the suite against each store in a test
// process of its own, since a failure of the suite fails its test, and
// checks that the suite fails each wrong store at the check meant to catch
// it (others may fail too), and passes the correct ones.
func TestRunFailsEachWrongStore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a test process per store")
	}
	for name, tc := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestRunOnOneStore$", "-test.v", "-test.count=1", "-test.timeout=60s")
			cmd.Env = append(os.Environ(), storeEnv+"="+name)
			out, err := cmd.CombinedOutput()
			failed := failedChecks(string(out))
			switch {
			case tc.fails == "" && err != nil:
				t.Fatalf("the suite failed a correct store (%v): %v\n%s", err, failed, out)
			case tc.fails == "":
				if !strings.Contains(string(out), "--- PASS: TestRunOnOneStore") {
					t.Fatalf("the suite did not run:\n%s", out)
				}
			case err == nil:
				t.Fatalf("the suite passed the store; want its check %q to fail\n%s", tc.fails, out)
			case !slices.Contains(failed, tc.fails):
				t.Fatalf("the suite failed %q; want %q among them\n%s", failed, tc.fails, out)
			}
		})
	}
}

// failedChecks returns the names of the suite's checks that out reports
// failed, as t.Run names them, with spaces for underscores.
func failedChecks(out string) []string {
	var names []string
	for line := range strings.Lines(out) {
		_, sub, ok := strings.Cut(strings.TrimSpace(line), "--- FAIL: TestRunOnOneStore/")
		if !ok {
			continue
		}
		sub, _, _ = strings.Cut(sub, " (")
		names = append(names, strings.ReplaceAll(sub, "_", " "))
	}
	return names
}

// TestRunOnOneStore runs the suite against the store named by
// CACHETEST_STORE, for TestRunFailsEachWrongStore; without it, it is
// skipped.
func TestRunOnOneStore(t *testing.T) {
	name := os.Getenv(storeEnv)
	if name == "" {
		t.Skip(storeEnv + " is not set: TestRunFailsEachWrongStore sets it")
	}
	tc, ok := stores[name]
	if !ok {
		t.Fatalf("no store is named %q", name)
	}
	var opts []cachetest.Option
	if tc.fails == "a call whose context is done returns promptly" {
		opts = append(opts, cachetest.Within(within))
	}
	cachetest.Run(t, func(t *testing.T) cachetest.Store {
		if tc.store != nil {
			return tc.store()
		}
		s, err := cache.New(cache.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}, opts...)
}
