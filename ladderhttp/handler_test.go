package ladderhttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/ladderhttp"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/reload"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// fakeScore is a pure-Go model: probability = first feature / 100.
func fakeScore(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f := in[0].Data.([]float32)
	rows := len(f) / 4
	out := make([]float32, rows)
	for i := range rows {
		out[i] = min(max(f[4*i]/100, 0), 1)
	}
	return []tensor.Tensor{tensor.New("probability", []int64{int64(rows), 1}, out)}, nil
}

func heuristic(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	rows := in[0].Shape[0]
	out := make([]float32, rows)
	for i := range out {
		out[i] = 0.5
	}
	return []tensor.Tensor{tensor.New("probability", []int64{rows, 1}, out)}, nil
}

// ladder is a pure-Go ladder for the handler's tests: two fault-injecting
// tiers over fakeScore, the cache and a heuristic.
type ladder struct {
	r               *router.Router
	primary, backup *chaos.Faulty
}

type ladderOpts struct {
	noHeuristic bool
	timeout     time.Duration   // the tiers' attempt timeout
	cache       router.LastGood // nil for the router's own
}

func newLadder(t testing.TB, o ladderOpts) *ladder {
	t.Helper()
	l := &ladder{
		primary: chaos.Wrap(router.ModelFunc(fakeScore), chaos.Fault{}, chaos.WithSeed(1)),
		backup:  chaos.Wrap(router.ModelFunc(fakeScore), chaos.Fault{}, chaos.WithSeed(2)),
	}
	// A breaker that opens after four failures in a row and stays open for
	// the test, so Retry-After is an hour.
	pol := policy.Config{MaxAttempts: 1, FailureRate: 1, Executions: 4, OpenFor: time.Hour, Timeout: o.timeout}
	cfg := router.Config{
		Tiers: []router.Tier{
			{Name: "primary", Model: l.primary, Version: "v2", Policy: pol},
			{Name: "backup", Model: l.backup, Version: "v1", Policy: pol},
		},
		Inputs:  []tensor.Info{{Name: "features", DType: tensor.Float32, Shape: []int64{-1, 4}}},
		Outputs: []tensor.Info{{Name: "probability", DType: tensor.Float32, Shape: []int64{-1, 1}}},
		Cache:   o.cache,
	}
	if !o.noHeuristic {
		cfg.Heuristic = heuristic
	}
	r, err := router.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	l.r = r
	return l
}

// trip opens both tiers' breakers by failing them.
func (l *ladder) trip(t testing.TB, h http.Handler) {
	t.Helper()
	l.primary.Set(chaos.Fault{ErrorRate: 1})
	l.backup.Set(chaos.Fault{ErrorRate: 1})
	for i := range 8 {
		serve(h, post(`{"vector":[`+itoa(i)+`,1,2,3]}`))
	}
	for name, th := range l.r.Health() {
		if th.State != policy.Open {
			t.Fatalf("breaker of %s is %v after failing; want open", name, th.State)
		}
	}
}

func itoa(i int) string { return string(rune('0'+i%10)) + "1" }

func post(body string) *http.Request {
	return httptest.NewRequest(http.MethodPost, "/v1/predict", strings.NewReader(body))
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func newHandler(t testing.TB, r *router.Router, o ladderhttp.Options) *ladderhttp.Handler {
	t.Helper()
	h, err := ladderhttp.New(r, o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const row = `{"inputs":{"features":{"dtype":"float32","shape":[1,4],"data":[42,1,2,3]}}}`

type errorJSON struct {
	Error struct {
		Status   int    `json:"status"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		Field    string `json:"field"`
		Expected string `json:"expected"`
		Got      string `json:"got"`
	} `json:"error"`
	Tiers []struct {
		Tier, Reason, Error string
	} `json:"tiers"`
	RequestID string `json:"request_id"`
}

func TestStatusCodes(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		body       string
		header     map[string]string
		primary    chaos.Fault
		status     int
		wantHeader map[string]string // "" means absent
		field      string            // the 400's field
		expected   string            // substring of the 400's expected
	}{
		{name: "healthy primary serves", body: row, status: 200,
			wantHeader: map[string]string{"Ladder-Tier": "primary", "Ladder-Degraded": "false", "Ladder-Attempts": "1",
				"Ladder-Version": "v2", "Ladder-Fell": "", "Content-Type": "application/json"}},
		{name: "vector shorthand", body: `{"vector":[42,1,2,3]}`, status: 200,
			wantHeader: map[string]string{"Ladder-Tier": "primary"}},
		{name: "primary failing, backup serves", body: row, primary: chaos.Fault{ErrorRate: 1}, status: 200,
			wantHeader: map[string]string{"Ladder-Tier": "backup", "Ladder-Degraded": "true", "Ladder-Version": "v1", "Ladder-Fell": "primary=error"}},
		{name: "malformed JSON", body: `{"inputs":`, status: 400, expected: "JSON object"},
		{name: "empty body", body: ``, status: 400, expected: "JSON object"},
		{name: "unknown field", body: `{"input":{}}`, status: 400, field: "input"},
		{name: "wrong JSON type", body: `{"inputs":[]}`, status: 400, field: "inputs", expected: "object"},
		{name: "unknown input", body: `{"inputs":{"features":{"dtype":"float32","shape":[1,4],"data":[1,2,3,4]},"colour":{"dtype":"string","shape":[],"data":"red"}}}`,
			status: 400, field: "inputs.colour", expected: "features"},
		{name: "missing input", body: `{"inputs":{"colour":{"dtype":"string","shape":[],"data":"red"}}}`,
			status: 400, field: "inputs.features", expected: "float32[?,4]"},
		{name: "wrong shape", body: `{"vector":[1,2,3]}`, status: 400, field: "inputs.features", expected: "float32[?,4]"},
		{name: "wrong dtype", body: `{"inputs":{"features":{"dtype":"int32","shape":[1,4],"data":[1,2,3,4]}}}`,
			status: 400, field: "inputs.features", expected: "float32"},
		{name: "unknown dtype", body: `{"inputs":{"features":{"dtype":"float128","shape":[1,4],"data":[1,2,3,4]}}}`,
			status: 400, field: "inputs.features.dtype", expected: "bfloat16"},
		{name: "data length off the shape", body: `{"inputs":{"features":{"dtype":"float32","shape":[1,4],"data":[1,2,3]}}}`,
			status: 400, field: "inputs.features.data", expected: "4 float32 elements"},
		{name: "not a number", body: `{"inputs":{"features":{"dtype":"float32","shape":[1,4],"data":[1,"x",3,4]}}}`,
			status: 400, field: "inputs.features.data[1]", expected: "float32 number"},
		{name: "float out of float32 range", body: `{"vector":[1,1e39,3,4]}`, status: 400, field: "vector[1]"},
		{name: "bad staleness header", body: row, header: map[string]string{"Ladder-Max-Staleness": "soon"},
			status: 400, field: "Ladder-Max-Staleness", expected: "duration"},
		{name: "unknown lowest tier", body: row, header: map[string]string{"Ladder-Lowest-Tier": "gpu"},
			status: 400, field: "Ladder-Lowest-Tier", expected: "primary, backup, cache, heuristic"},
		{name: "bad timeout", body: row, header: map[string]string{"Ladder-Timeout": "-1s"}, status: 400, field: "Ladder-Timeout"},
		{name: "wrong method", method: http.MethodGet, status: 405, wantHeader: map[string]string{"Allow": "POST"}},
		{name: "body too large", body: `{"vector":[` + strings.Repeat("1,", 600) + `1]}`, status: 413},
		{name: "lowest tier refuses the fallback", body: row, primary: chaos.Fault{ErrorRate: 1},
			header: map[string]string{"Ladder-Lowest-Tier": "primary"}, status: 503, wantHeader: map[string]string{"Retry-After": ""}},
		{name: "caller's deadline already passed", body: row, header: map[string]string{"Ladder-Timeout": "1ns"}, status: 504},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLadder(t, ladderOpts{})
			l.primary.Set(tc.primary)
			h := newHandler(t, l.r, ladderhttp.Options{MaxBodyBytes: 1024})
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/v1/predict", strings.NewReader(tc.body))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := serve(h, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if id := rec.Header().Get("X-Request-Id"); !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) {
				t.Errorf("X-Request-Id = %q, want 16 hex digits", id)
			}
			if rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
			}
			if tc.status == 200 {
				var ok struct {
					Outputs map[string]struct {
						DType string    `json:"dtype"`
						Shape []int64   `json:"shape"`
						Data  []float64 `json:"data"`
					} `json:"outputs"`
					Tier     string `json:"tier"`
					Degraded bool   `json:"degraded"`
					Fell     []struct{ Tier, Reason string }
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &ok); err != nil {
					t.Fatalf("200 body is not the answer: %v\n%s", err, rec.Body)
				}
				p := ok.Outputs["probability"]
				if p.DType != "float32" || len(p.Data) != 1 || p.Data[0] != 0.42 {
					t.Errorf("outputs %+v, want probability float32 [0.42]", ok.Outputs)
				}
				if ok.Tier != rec.Header().Get("Ladder-Tier") || ok.Degraded != (rec.Header().Get("Ladder-Degraded") == "true") {
					t.Errorf("body %+v disagrees with headers %v", ok, rec.Header())
				}
				return
			}
			var e errorJSON
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("error body is not JSON: %v\n%s", err, rec.Body)
			}
			if e.Error.Status != tc.status || e.Error.Message == "" || e.RequestID != rec.Header().Get("X-Request-Id") {
				t.Errorf("error body %+v", e)
			}
			if e.Error.Field != tc.field {
				t.Errorf("field %q, want %q (%+v)", e.Error.Field, tc.field, e.Error)
			}
			if !strings.Contains(e.Error.Expected, tc.expected) {
				t.Errorf("expected %q, want it to mention %q", e.Error.Expected, tc.expected)
			}
			if tc.status == 503 && (len(e.Tiers) != 4 || e.Tiers[0].Tier != "primary" || e.Tiers[0].Reason != "error" || e.Tiers[1].Reason != "not_accepted") {
				t.Errorf("503 tiers %+v, want each rung's reason", e.Tiers)
			}
		})
	}
}

func TestEveryBreakerOpen(t *testing.T) {
	// Given a ladder whose two tiers failed until both breakers opened,
	l := newLadder(t, ladderOpts{})
	h := newHandler(t, l.r, ladderhttp.Options{})
	l.trip(t, h)

	t.Run("invalid input is still a 400", func(t *testing.T) {
		rec := serve(h, post(`{"vector":[1,2,3]}`))
		if rec.Code != 400 {
			t.Fatalf("status %d, want 400; %s", rec.Code, rec.Body)
		}
	})
	t.Run("the heuristic serves, saying why the tiers fell", func(t *testing.T) {
		rec := serve(h, post(`{"vector":[77,1,2,3]}`))
		if rec.Code != 200 || rec.Header().Get("Ladder-Tier") != "heuristic" ||
			rec.Header().Get("Ladder-Fell") != "primary=breaker_open, backup=breaker_open, cache=not_cached" {
			t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
		}
	})
	t.Run("models only: 503 with Retry-After", func(t *testing.T) {
		req := post(`{"vector":[77,1,2,3]}`)
		req.Header.Set("Ladder-Lowest-Tier", "backup")
		rec := serve(h, req)
		if rec.Code != 503 {
			t.Fatalf("status %d, want 503; %s", rec.Code, rec.Body)
		}
		// OpenFor is an hour.
		if ra := rec.Header().Get("Retry-After"); ra < "3590" || ra > "3600" || len(ra) != 4 {
			t.Errorf("Retry-After %q, want about 3600", ra)
		}
		var e errorJSON
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if len(e.Tiers) < 2 || e.Tiers[0].Reason != "breaker_open" || e.Tiers[1].Reason != "breaker_open" {
			t.Errorf("tiers %+v, want both breaker_open", e.Tiers)
		}
	})
}

func TestDeadlineWhileTiersHang(t *testing.T) {
	// Given tiers that hang, and a caller that accepts only models,
	l := newLadder(t, ladderOpts{timeout: time.Minute})
	l.primary.Set(chaos.Fault{HangRate: 1})
	l.backup.Set(chaos.Fault{HangRate: 1})
	h := newHandler(t, l.r, ladderhttp.Options{})
	// When the caller allows 30ms,
	req := post(row)
	req.Header.Set("Ladder-Timeout", "30ms")
	req.Header.Set("Ladder-Lowest-Tier", "backup")
	start := time.Now()
	rec := serve(h, req)
	// Then the answer is a prompt 504.
	if rec.Code != 504 {
		t.Fatalf("status %d, want 504; %s", rec.Code, rec.Body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// observer records what a Handler reports.
type observer struct {
	started, finished atomic.Int32
	last              atomic.Pointer[error]
}

func (o *observer) Started() { o.started.Add(1) }
func (o *observer) Finished(_ router.Answer, err error, _ time.Duration) {
	o.last.Store(&err)
	o.finished.Add(1)
}

func TestClientDisconnectCancelsThePrediction(t *testing.T) {
	// Given a primary that blocks until its context is done,
	cancelled := make(chan error, 1)
	entered := make(chan struct{})
	blocking := router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
		close(entered)
		<-ctx.Done()
		cancelled <- ctx.Err()
		return nil, ctx.Err()
	})
	r, err := router.New(router.Config{
		Tiers:     []router.Tier{{Name: "primary", Model: blocking, Policy: policy.Config{Timeout: time.Minute}}},
		Inputs:    []tensor.Info{{Name: "features", DType: tensor.Float32, Shape: []int64{-1, 4}}},
		Heuristic: heuristic,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	obs := &observer{}
	srv := httptest.NewServer(newHandler(t, r, ladderhttp.Options{Observer: obs}))
	defer srv.Close()

	// When the client gives up,
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(row))
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered // the prediction is running
	cancel()
	<-done

	// Then the model's context is cancelled and the request ends.
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("model saw %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the model's context was not cancelled")
	}
	testenv.Eventually(t, "the observer sees the request finish", func() bool { return obs.finished.Load() > 0 })
	if p := obs.last.Load(); p == nil || !errors.Is(*p, context.Canceled) {
		t.Errorf("observer finished with %v, want context.Canceled", p)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestRequestID(t *testing.T) {
	l := newLadder(t, ladderOpts{})
	h := newHandler(t, l.r, ladderhttp.Options{})
	for _, tc := range []struct{ name, sent, want string }{
		{"kept and echoed", "abc-123", "abc-123"},
		{"a space is refused", "abc 123", ""},
		{"too long is refused", strings.Repeat("x", 129), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := post(row)
			req.Header.Set("X-Request-Id", tc.sent)
			rec := serve(h, req)
			got := rec.Header().Get("X-Request-Id")
			if tc.want != "" && got != tc.want || tc.want == "" && (got == tc.sent || len(got) != 16) {
				t.Errorf("X-Request-Id %q for %q", got, tc.sent)
			}
			if !strings.Contains(rec.Body.String(), `"request_id":"`+got+`"`) {
				t.Errorf("body lacks the request id: %s", rec.Body)
			}
		})
	}
}

func TestQueryParameters(t *testing.T) {
	store, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() }) // after the router's Close
	l := newLadder(t, ladderOpts{cache: store})
	h := newHandler(t, l.r, ladderhttp.Options{})
	// Given an answer in the cache and a failing ladder,
	if rec := serve(h, post(row)); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	if err := store.Flush(context.Background()); err != nil { // the cache stores asynchronously
		t.Fatal(err)
	}
	l.primary.Set(chaos.Fault{ErrorRate: 1})
	l.backup.Set(chaos.Fault{ErrorRate: 1})
	// When the caller accepts a stale answer, the cache serves it.
	req := httptest.NewRequest(http.MethodPost, "/v1/predict?max_staleness=1h", strings.NewReader(row))
	rec := serve(h, req)
	if rec.Header().Get("Ladder-Tier") != "cache" || rec.Header().Get("Ladder-Origin") != "primary" || rec.Header().Get("Ladder-Age") == "" {
		t.Fatalf("status %d headers %v", rec.Code, rec.Header())
	}
	if !strings.Contains(rec.Body.String(), `"age_seconds":`) {
		t.Errorf("body lacks the age: %s", rec.Body)
	}
	// When it accepts nothing stale, the heuristic serves.
	req = httptest.NewRequest(http.MethodPost, "/v1/predict?max_staleness=0", strings.NewReader(row))
	if rec := serve(h, req); rec.Header().Get("Ladder-Tier") != "heuristic" {
		t.Fatalf("status %d headers %v", rec.Code, rec.Header())
	}
	// And lowest_tier=cache refuses the heuristic.
	req = httptest.NewRequest(http.MethodPost, "/v1/predict?max_staleness=0&lowest_tier=cache", strings.NewReader(row))
	if rec := serve(h, req); rec.Code != 503 {
		t.Fatalf("status %d, want 503", rec.Code)
	}
}

func TestLogs(t *testing.T) {
	l := newLadder(t, ladderOpts{})
	l.primary.Set(chaos.Fault{ErrorRate: 1})
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newHandler(t, l.r, ladderhttp.Options{Logger: log})
	req := post(row)
	req.Header.Set("X-Request-Id", "req-1")
	serve(h, req)
	serve(h, post(`{"vector":[1]}`))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &first)
	_ = json.Unmarshal([]byte(lines[1]), &second)
	if first["request_id"] != "req-1" || first["tier"] != "backup" || first["level"] != "INFO" || first["fell"] == nil {
		t.Errorf("degraded answer logged as %v", first)
	}
	if second["status"] != 400.0 || !strings.Contains(second["err"].(string), "invalid input") {
		t.Errorf("refused request logged as %v", second)
	}
}

func TestProbes(t *testing.T) {
	get := func(h http.Handler, target string) *httptest.ResponseRecorder {
		return serve(h, httptest.NewRequest(http.MethodGet, target, nil))
	}
	t.Run("healthz answers whatever the tiers do", func(t *testing.T) {
		l := newLadder(t, ladderOpts{noHeuristic: true})
		h := newHandler(t, l.r, ladderhttp.Options{})
		l.trip(t, h)
		if rec := get(h.Healthz(), "/healthz"); rec.Code != 200 || rec.Body.String() != "ok\n" {
			t.Errorf("healthz %d %q", rec.Code, rec.Body)
		}
		rec := serve(h.Healthz(), httptest.NewRequest(http.MethodPost, "/healthz", nil))
		if rec.Code != 405 {
			t.Errorf("POST /healthz: %d", rec.Code)
		}
	})
	t.Run("ready while the heuristic can answer", func(t *testing.T) {
		l := newLadder(t, ladderOpts{})
		h := newHandler(t, l.r, ladderhttp.Options{})
		l.trip(t, h)
		if rec := get(h.Readyz(), "/readyz"); rec.Code != 200 {
			t.Errorf("readyz %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("not ready when every tier is open and nothing else answers", func(t *testing.T) {
		l := newLadder(t, ladderOpts{noHeuristic: true})
		h := newHandler(t, l.r, ladderhttp.Options{})
		if rec := get(h.Readyz(), "/readyz"); rec.Code != 200 {
			t.Errorf("healthy readyz %d %s", rec.Code, rec.Body)
		}
		l.trip(t, h)
		if rec := get(h.Readyz(), "/readyz"); rec.Code != 503 || !strings.Contains(rec.Body.String(), "no rung can serve") {
			t.Errorf("readyz %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("not ready while a required tier is open", func(t *testing.T) {
		l := newLadder(t, ladderOpts{})
		h := newHandler(t, l.r, ladderhttp.Options{Required: []string{"primary"}})
		l.trip(t, h)
		rec := get(h.Readyz(), "/readyz")
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), "required rung primary cannot serve: open") {
			t.Errorf("readyz %d %s", rec.Code, rec.Body)
		}
		// verbose: every rung's state, why, since and until.
		rec = get(h.Readyz(), "/readyz?verbose")
		var rd ladderhttp.Readiness
		if err := json.Unmarshal(rec.Body.Bytes(), &rd); err != nil || rec.Code != 503 {
			t.Fatalf("verbose %d %v %s", rec.Code, err, rec.Body)
		}
		p := rd.Rungs[0]
		if rd.Ready || p.Name != "primary" || p.State != "open" || p.CanServe || !p.Required || p.Why != "breaker_open" ||
			p.Since == nil || p.Until == nil || !p.Until.After(*p.Since) || p.FellAt == nil {
			t.Errorf("primary %+v", p)
		}
		if hr := rd.Rungs[3]; hr.Name != "heuristic" || !hr.CanServe || hr.State != "available" {
			t.Errorf("heuristic %+v", hr)
		}
	})
	t.Run("not ready while a tier the router requires is loading", func(t *testing.T) {
		// Given a ladder whose required primary is still loading,
		loading := make(chan struct{})
		rl := reload.New(reload.Config{Load: reload.LoaderFunc(func(ctx context.Context) (reload.Loaded, error) {
			select {
			case <-loading:
				return reload.Loaded{Model: router.ModelFunc(fakeScore)}, nil
			case <-ctx.Done():
				return reload.Loaded{}, ctx.Err()
			}
		})})
		r, err := router.New(router.Config{
			Tiers:     []router.Tier{{Name: "primary", Required: true, Manage: []router.Manager{rl}}},
			Heuristic: heuristic,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		h := newHandler(t, r, ladderhttp.Options{})
		// then /readyz says not ready, though the heuristic could answer,
		if rec := get(h.Readyz(), "/readyz"); rec.Code != 503 || !strings.Contains(rec.Body.String(), "required tier primary cannot serve: loading") {
			t.Errorf("readyz while loading %d %s", rec.Code, rec.Body)
		}
		// and ready once the primary has loaded.
		close(loading)
		testenv.Eventually(t, "the router is ready", r.Ready)
		if rec := get(h.Readyz(), "/readyz"); rec.Code != 200 {
			t.Errorf("readyz once loaded %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("an unknown required rung is refused by New", func(t *testing.T) {
		l := newLadder(t, ladderOpts{})
		if _, err := ladderhttp.New(l.r, ladderhttp.Options{Required: []string{"gpu"}}); err == nil {
			t.Error("New accepted an unknown required rung")
		}
	})
}

func TestConcurrentRequestsWhileFaultsSwitch(t *testing.T) {
	// Given a ladder whose heuristic can always answer,
	l := newLadder(t, ladderOpts{timeout: 20 * time.Millisecond})
	h := newHandler(t, l.r, ladderhttp.Options{Observer: &observer{}})
	faults := []chaos.Fault{{ErrorRate: 1}, {HangRate: 1}, {NaNRate: 1}, {PanicRate: 0.5}, {DownFor: 5 * time.Millisecond, UpFor: 5 * time.Millisecond}, {}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 30 {
			l.primary.Set(faults[i%len(faults)])
			l.backup.Set(faults[(i+2)%len(faults)])
			time.Sleep(2 * time.Millisecond) // real time: the requests race the switches, and a fault flaps on real time

		}
	}()
	// When valid requests arrive from several goroutines while the
	// faults switch,
	errs := make(chan string, 8)
	for g := range 8 {
		go func() {
			for i := range 40 {
				body := `{"vector":[` + strconv.Itoa(g*100+i) + `,1,2,3]}`
				if rec := serve(h, post(body)); rec.Code != 200 {
					errs <- fmt.Sprintf("status %d: %s", rec.Code, rec.Body)
					return
				}
			}
			errs <- ""
		}()
	}
	// Then every one is answered.
	for range 8 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	<-done
}
