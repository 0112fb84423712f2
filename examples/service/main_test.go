package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/internal/bundled"
	"github.com/ladder-ml/ladder/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

func TestShutdownDrainsInFlightRequests(t *testing.T) {
	testenv.MustHaveRuntime(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	stopped := make(chan error, 1)
	go func() {
		stopped <- run(ctx, slog.New(slog.DiscardHandler), addr, bundled.Path(""), 10*time.Second, false)
	}()
	base := "http://" + addr
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	up := false
	for range 200 {
		if resp, err := client.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			up = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !up {
		stop()
		t.Fatalf("the service did not start: %v", <-stopped)
	}

	// Given both tiers slowed past their 100ms timeout by the admin
	// endpoint, so that a request takes about 200ms,
	for _, tier := range []string{"primary", "backup"} {
		req, _ := http.NewRequest(http.MethodPut, base+"/admin/faults/"+tier, strings.NewReader(`{"latency": "250ms"}`))
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("admin: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	// and a prediction in flight,
	row := `{"vector":[17.99,10.38,122.8,1001,0.1184,0.2776,0.3001,0.1471,0.2419,0.07871,1.095,0.9053,8.589,153.4,0.006399,0.04904,0.05373,0.01587,0.03003,0.006193,25.38,17.33,184.6,2019,0.1622,0.6656,0.7119,0.2654,0.4601,0.1189]}`
	answered := make(chan string, 1)
	go func() {
		resp, err := client.Post(base+"/v1/predict", "application/json", strings.NewReader(row))
		if err != nil {
			answered <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- resp.Status + " " + resp.Header.Get("Ladder-Tier") + " " + string(body)
	}()
	for deadline := time.Now().Add(5 * time.Second); inFlight(client, base) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the prediction never showed in flight")
		}
	}

	// When the service is told to stop,
	stop()

	// Then the request in flight is answered before it exits.
	if got := <-answered; !strings.HasPrefix(got, "200 OK ") {
		t.Errorf("in-flight request: %s", got)
	}
	if err := <-stopped; err != nil {
		t.Errorf("run: %v", err)
	}
}

// inFlight reads ladder_in_flight_requests from /metrics.
func inFlight(client *http.Client, base string) int {
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "ladder_in_flight_requests "); ok {
			return int(v[0] - '0')
		}
	}
	return 0
}

func TestASlowBodyIsCutOff(t *testing.T) {
	// Given the service's server with a short read timeout,
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
	}), 200*time.Millisecond)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	// when a client sends its headers and then its body a byte at a time,
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// then the server closes the connection long before the body ends.
	for range 1000 {
		if _, err := conn.Write([]byte("{")); err != nil {
			break
		}
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := conn.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			break // closed, or answered and closed
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the slow client still holds the connection after 10s")
		}
	}
}

func TestTheAdminEndpointRefusesFaultsOutOfRange(t *testing.T) {
	for _, body := range []string{`{"error_rate": 2}`, `{"hang_rate": -1}`, `{"latency": "-5s"}`, `{"down_for": "-1s"}`} {
		var spec faultJSON
		if err := json.Unmarshal([]byte(body), &spec); err != nil {
			t.Fatal(err)
		}
		if spec.check() == nil {
			t.Errorf("%s was accepted", body)
		}
	}
	var ok faultJSON
	if err := json.Unmarshal([]byte(`{"error_rate": 1, "latency": "50ms", "down_for": "2s", "up_for": "2s"}`), &ok); err != nil || ok.check() != nil {
		t.Errorf("a sane fault was refused: %v %v", err, ok.check())
	}
}
