// Command service serves the bundled breast-cancer ladder over HTTP, with
// Prometheus metrics, probes, JSON logs and an admin endpoint that breaks
// and heals tiers while traffic flows.
//
// The ladder is primary.onnx → backup.onnx → last-good cache → a
// mean-radius heuristic. Each model tier is wrapped in a chaos.Faulty, so
// a fault can be injected into it at run time:
//
//	make serve     # or: go run ./examples/service -addr 127.0.0.1:8080
//
//	POST   /v1/predict           a prediction (see package ladderhttp)
//	GET    /healthz              liveness
//	GET    /readyz[?verbose]     readiness, and every rung's state
//	GET    /metrics              Prometheus metrics
//	GET    /admin/faults         the faults injected now, by tier
//	PUT    /admin/faults/{tier}  inject a fault: {"error_rate": 1}, {"latency": "50ms"},
//	                             {"hang_rate": 1}, {"nan_rate": 1}, {"down_for": "2s", "up_for": "2s"} (a flap), ...
//	DELETE /admin/faults/{tier}  heal the tier
//
// SIGINT or SIGTERM stops accepting connections, lets in-flight requests
// finish (up to -drain), then closes the ladder and the models.
//
// With -bare it serves, at the same address and path, the baseline that
// `make load` compares with: a plain handler calling primary.onnx
// directly, with no ladder, metrics or logs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/bare"
	"github.com/ladder-ml/ladder/internal/bundled"
	"github.com/ladder-ml/ladder/ladderhttp"
	"github.com/ladder-ml/ladder/ladderprom"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on; keep it on loopback: the admin endpoint breaks the service on request")
	dir := flag.String("testdata", bundled.Path(""), "folder holding primary.onnx and backup.onnx")
	level := flag.String("log-level", "info", "log level: debug (every request), info (degraded answers, refused requests), warn (failures, breaker changes), error")
	drain := flag.Duration("drain", 10*time.Second, "how long shutdown waits for in-flight requests")
	useBare := flag.Bool("bare", false, "serve the bare baseline handler instead of the ladder")
	flag.Parse()
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(os.Stderr, "service: -log-level:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *addr, *dir, *drain, *useBare); err != nil {
		log.Error("service: " + err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, addr, dir string, drain time.Duration, useBare bool) (err error) {
	if err := models.InitRuntime(""); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, models.ShutdownRuntime()) }()
	primaryModel, err := models.Load(filepath.Join(dir, "primary.onnx"), models.Options{})
	if err != nil {
		return err
	}
	defer primaryModel.Close()
	backupModel, err := models.Load(filepath.Join(dir, "backup.onnx"), models.Options{})
	if err != nil {
		return err
	}
	defer backupModel.Close()

	faulty := map[string]*chaos.Faulty{
		"primary": chaos.Wrap(primaryModel, chaos.Fault{}),
		"backup":  chaos.Wrap(backupModel, chaos.Fault{}),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := ladderprom.New(reg, ladderprom.Options{})
	if err != nil {
		return err
	}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{
			{Name: "primary", Model: faulty["primary"]},
			{Name: "backup", Model: faulty["backup"]},
		},
		Heuristic: meanRadiusRule,
		Check:     probabilityInRange,
		OnEvent:   metrics.OnEvent,
		Logger:    log,
	})
	if err != nil {
		return err
	}
	defer r.Close()
	if err := metrics.Watch(r); err != nil {
		return err
	}
	h, err := ladderhttp.New(r, ladderhttp.Options{Logger: log, Observer: metrics})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	if useBare {
		mux.Handle("POST /v1/predict", bare.Handler(primaryModel))
	} else {
		mux.Handle("/v1/predict", h)
	}
	mux.Handle("GET /healthz", h.Healthz())
	mux.Handle("GET /readyz", h.Readyz())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	admin := &admin{faulty: faulty, log: log}
	mux.HandleFunc("GET /admin/faults", admin.list)
	mux.HandleFunc("PUT /admin/faults/{tier}", admin.set)
	mux.HandleFunc("POST /admin/faults/{tier}", admin.set)
	mux.HandleFunc("DELETE /admin/faults/{tier}", admin.clear)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := newServer(mux, readTimeout)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("service: listening", slog.String("addr", "http://"+ln.Addr().String()), slog.Any("ladder", r.Rungs()),
		slog.Bool("bare", useBare), slog.String("onnxruntime", models.RuntimeVersion))

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("service: shutting down, draining in-flight requests", slog.Duration("drain", drain))
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-served
	log.Info("service: stopped")
	return nil
}

// readTimeout bounds the reading of a whole request, body included: a
// prediction's body is a few kilobytes, and a client that sends it a byte
// at a time (slowloris) must not hold a connection and a goroutine for
// ever.
const readTimeout = 10 * time.Second

// newServer is the service's HTTP server: headers within 5s, the whole
// request within read, idle connections closed after a minute.
func newServer(h http.Handler, read time.Duration) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: min(5*time.Second, read), ReadTimeout: read, IdleTimeout: time.Minute}
}

// meanRadiusRule is the heuristic rung: large tumours (mean radius above
// 15) are more often malignant (label 0). One answer per row.
func meanRadiusRule(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	x := in[0].Data.([]float32)
	rows := in[0].Shape[0]
	out := make([]float32, rows)
	for i := range out {
		out[i] = 0.85
		if x[i*30] > 15 {
			out[i] = 0.15
		}
	}
	return []tensor.Tensor{tensor.New("probability", []int64{rows, 1}, out)}, nil
}

func probabilityInRange(out []tensor.Tensor) error {
	for _, p := range out[0].Data.([]float32) {
		if p < 0 || p > 1 {
			return fmt.Errorf("probability %v outside [0, 1]", p)
		}
	}
	return nil
}

// admin injects and clears faults.
type admin struct {
	faulty map[string]*chaos.Faulty
	log    *slog.Logger
}

// faultJSON is a chaos.Fault as the admin endpoint reads and writes it.
type faultJSON struct {
	ErrorRate   float64  `json:"error_rate,omitempty"`
	DownFor     duration `json:"down_for,omitempty"`
	UpFor       duration `json:"up_for,omitempty"`
	HangRate    float64  `json:"hang_rate,omitempty"`
	Latency     duration `json:"latency,omitempty"`
	SlowRate    float64  `json:"slow_rate,omitempty"`
	SlowLatency duration `json:"slow_latency,omitempty"`
	NaNRate     float64  `json:"nan_rate,omitempty"`
	PanicRate   float64  `json:"panic_rate,omitempty"`
}

// check refuses a rate outside [0, 1] and a negative duration, which
// chaos would quietly take as "never" or "none".
func (f faultJSON) check() error {
	for name, r := range map[string]float64{"error_rate": f.ErrorRate, "hang_rate": f.HangRate, "slow_rate": f.SlowRate, "nan_rate": f.NaNRate, "panic_rate": f.PanicRate} {
		if !(r >= 0 && r <= 1) {
			return fmt.Errorf("%s is %v; expected a rate in [0, 1]", name, r)
		}
	}
	for name, d := range map[string]duration{"down_for": f.DownFor, "up_for": f.UpFor, "latency": f.Latency, "slow_latency": f.SlowLatency} {
		if d < 0 {
			return fmt.Errorf("%s is %v; expected a duration ≥ 0", name, time.Duration(d))
		}
	}
	return nil
}

func (f faultJSON) fault() chaos.Fault {
	return chaos.Fault{ErrorRate: f.ErrorRate, DownFor: time.Duration(f.DownFor), UpFor: time.Duration(f.UpFor),
		HangRate: f.HangRate, Latency: time.Duration(f.Latency), SlowRate: f.SlowRate, SlowLatency: time.Duration(f.SlowLatency),
		NaNRate: f.NaNRate, PanicRate: f.PanicRate}
}

func toJSON(f chaos.Fault) faultJSON {
	return faultJSON{ErrorRate: f.ErrorRate, DownFor: duration(f.DownFor), UpFor: duration(f.UpFor), HangRate: f.HangRate,
		Latency: duration(f.Latency), SlowRate: f.SlowRate, SlowLatency: duration(f.SlowLatency), NaNRate: f.NaNRate, PanicRate: f.PanicRate}
}

// duration is a time.Duration written as "50ms".
type duration time.Duration

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = duration(v)
	return err
}

func (a *admin) list(w http.ResponseWriter, _ *http.Request) {
	out := map[string]faultJSON{}
	for name, f := range a.faulty {
		out[name] = toJSON(f.Fault())
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *admin) tier(w http.ResponseWriter, req *http.Request) (*chaos.Faulty, bool) {
	f, ok := a.faulty[req.PathValue("tier")]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no tier " + req.PathValue("tier") + "; expected primary or backup"})
	}
	return f, ok
}

func (a *admin) set(w http.ResponseWriter, req *http.Request) {
	f, ok := a.tier(w, req)
	if !ok {
		return
	}
	var spec faultJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "fault: " + err.Error()})
		return
	}
	if err := spec.check(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "fault: " + err.Error()})
		return
	}
	f.Set(spec.fault())
	a.log.Warn("service: fault injected", slog.String("tier", req.PathValue("tier")), slog.Any("fault", spec))
	writeJSON(w, http.StatusOK, toJSON(f.Fault()))
}

func (a *admin) clear(w http.ResponseWriter, req *http.Request) {
	f, ok := a.tier(w, req)
	if !ok {
		return
	}
	f.Set(chaos.Fault{})
	a.log.Warn("service: fault cleared", slog.String("tier", req.PathValue("tier")))
	writeJSON(w, http.StatusOK, toJSON(f.Fault()))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
