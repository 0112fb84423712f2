package ladderhttp_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ladder-ml/ladder/internal/bare"
	"github.com/ladder-ml/ladder/internal/dataset"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/ladderhttp"
	"github.com/ladder-ml/ladder/ladderprom"
	"github.com/ladder-ml/ladder/router"
)

// BenchmarkHandler serves the held-out rows from primary.onnx, one row
// per request in the same JSON shape, through two handlers:
//
//   - bare: a plain net/http handler that decodes with encoding/json and
//     calls the model directly (internal/bare);
//   - ladder: the ladderhttp handler over primary.onnx → backup.onnx →
//     cache → heuristic, with ladderprom metrics on.
//
// Each runs over a real loopback connection (httptest.NewServer, keep-alive
// clients in parallel) and, as -direct, by calling ServeHTTP in process,
// where the handlers' own cost is not hidden behind the network's.
// Compare ns/op within one run: ladder's throughput over bare's is
// bare ns/op ÷ ladder ns/op.
func BenchmarkHandler(b *testing.B) {
	testenv.MustHaveRuntime(b)
	set, err := dataset.Load(testenv.Testdata("heldout.csv"))
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, len(set.Rows))
	for i, row := range set.Rows {
		var buf bytes.Buffer
		buf.WriteString(`{"inputs":{"features":{"dtype":"float32","shape":[1,30],"data":[`)
		for j, v := range row {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 32))
		}
		buf.WriteString(`]}}}`)
		bodies[i] = buf.Bytes()
	}
	handlers := []struct {
		name string
		make func(b *testing.B) http.Handler
	}{
		{"bare", func(b *testing.B) http.Handler { return bare.Handler(testenv.Load(b, "primary.onnx")) }},
		{"ladder", func(b *testing.B) http.Handler {
			reg := prometheus.NewRegistry()
			m, err := ladderprom.New(reg, ladderprom.Options{})
			if err != nil {
				b.Fatal(err)
			}
			r, err := router.New(router.Config{
				Tiers:     []router.Tier{{Name: "primary", Model: testenv.Load(b, "primary.onnx")}, {Name: "backup", Model: testenv.Load(b, "backup.onnx")}},
				Heuristic: heuristic,
				OnEvent:   m.OnEvent,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { r.Close() })
			if err := m.Watch(r); err != nil {
				b.Fatal(err)
			}
			return newHandler(b, r, ladderhttp.Options{Observer: m})
		}},
	}
	for _, h := range handlers {
		b.Run(h.name, func(b *testing.B) {
			srv := httptest.NewServer(h.make(b))
			defer srv.Close()
			client := srv.Client()
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			defer client.CloseIdleConnections()
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(2)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := bodies[int(next.Add(1))%len(bodies)]
					resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
	for _, h := range handlers {
		b.Run(h.name+"-direct", func(b *testing.B) {
			handler := h.make(b)
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := bodies[int(next.Add(1))%len(bodies)]
					req := httptest.NewRequest(http.MethodPost, "/v1/predict", bytes.NewReader(body))
					rec := httptest.NewRecorder()
					handler.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Error(fmt.Sprint("status ", rec.Code, rec.Body))
						return
					}
				}
			})
		})
	}
}
