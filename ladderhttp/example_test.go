package ladderhttp_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/ladder-ml/ladder/ladderhttp"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// A heuristic-only ladder served over HTTP: one valid request, one that
// does not fit the ladder's input contract.
func Example() {
	r, _ := router.New(router.Config{
		Inputs: []tensor.Info{{Name: "features", DType: tensor.Float32, Shape: []int64{-1, 2}}},
		Heuristic: func(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.5})}, nil
		},
	})
	defer r.Close()
	h, _ := ladderhttp.New(r, ladderhttp.Options{})

	for _, body := range []string{`{"vector": [1, 2]}`, `{"vector": [1, 2, 3]}`} {
		req := httptest.NewRequest(http.MethodPost, "/v1/predict", strings.NewReader(body))
		req.Header.Set("X-Request-Id", "example")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("Ladder-Tier"), rec.Header().Get("X-Request-Id"))
	}
	// Output:
	// 200 heuristic example
	// 400  example
}

// The handler and its probes on a mux, as a service mounts them.
func Example_serveMux() {
	r, err := router.New(router.Config{
		Inputs: []tensor.Info{{Name: "features", DType: tensor.Float32, Shape: []int64{-1, 2}}},
		Heuristic: func(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.5})}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	logger := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()

	h, err := ladderhttp.New(r, ladderhttp.Options{Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("POST /v1/predict", h)
	mux.Handle("GET /healthz", h.Healthz())
	mux.Handle("GET /readyz", h.Readyz())

	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/healthz", nil),
		httptest.NewRequest(http.MethodGet, "/readyz", nil),
		httptest.NewRequest(http.MethodPost, "/v1/predict", strings.NewReader(`{"vector": [1, 2]}`)),
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Printf("%s %s: %d, served by %q\n", req.Method, req.URL.Path, rec.Code, rec.Header().Get(ladderhttp.HeaderTier))
	}
	// Output:
	// GET /healthz: 200, served by ""
	// GET /readyz: 200, served by ""
	// POST /v1/predict: 200, served by "heuristic"
}
