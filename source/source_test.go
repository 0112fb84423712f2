package source_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ladder-ml/ladder/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var model = bytes.Repeat([]byte("model-bytes;"), 100)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// load accepts only the whole model, as an ONNX loader refuses a cut one.
func load(b []byte) (string, error) {
	if !bytes.Equal(b, model) {
		return "", errors.New("not a model")
	}
	return "loaded", nil
}

// server serves the model badly in the named way.
func server(t *testing.T, how string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch how {
		case "fail":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "missing":
			http.NotFound(w, r)
		case "hang":
			<-r.Context().Done()
		case "corrupt":
			bad := bytes.Clone(model)
			bad[10] ^= 0xff
			w.Write(bad)
		case "truncated":
			w.Header().Set("Content-Length", strconv.Itoa(len(model)))
			w.Write(model[:len(model)/2])
		case "truncated-short":
			w.Write(model[:len(model)/2])
		case "ok":
			w.Write(model)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestEachBadSourceIsReportedAndTheNextTried(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.onnx")
	if err := os.WriteFile(good, model, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := source.Options{Timeout: 200 * time.Millisecond, MaxSize: int64(len(model))}
	for _, tc := range []struct {
		name string
		bad  func(t *testing.T) source.Source
		want source.Reason
	}{
		{"a missing file", func(*testing.T) source.Source { return source.Source{Path: filepath.Join(dir, "nope.onnx")} }, source.Missing},
		{"a server that fails", func(t *testing.T) source.Source { return source.Source{URL: server(t, "fail").URL} }, source.Unreachable},
		{"a server with no such model", func(t *testing.T) source.Source { return source.Source{URL: server(t, "missing").URL} }, source.Missing},
		{"a server that hangs", func(t *testing.T) source.Source { return source.Source{URL: server(t, "hang").URL} }, source.Unreachable},
		{"a corrupt copy", func(t *testing.T) source.Source {
			return source.Source{URL: server(t, "corrupt").URL, SHA256: sum(model)}
		}, source.Corrupt},
		{"a truncated copy, short of its Content-Length", func(t *testing.T) source.Source { return source.Source{URL: server(t, "truncated").URL} }, source.Unreachable},
		{"a truncated copy, pinned", func(t *testing.T) source.Source {
			return source.Source{URL: server(t, "truncated-short").URL, SHA256: sum(model)}
		}, source.Corrupt},
		{"a truncated copy, unpinned", func(t *testing.T) source.Source { return source.Source{URL: server(t, "truncated-short").URL} }, source.Unloadable},
		{"an oversized embedded copy", func(*testing.T) source.Source { return source.Source{Bytes: append(bytes.Clone(model), 0)} }, source.Oversized},
		{"a malformed source", func(*testing.T) source.Source { return source.Source{} }, source.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Given a bad source before a good one,
			srcs := []source.Source{tc.bad(t), {Path: good, SHA256: sum(model), Name: "mirror"}}
			var reported []*source.Error
			// when the model is loaded,
			start := time.Now()
			v, from, err := source.Load(context.Background(), srcs, opts, load, func(e *source.Error) { reported = append(reported, e) })
			// then the good source serves and the bad one is reported.
			if err != nil || v != "loaded" || from.String() != "mirror" {
				t.Fatalf("got %q from %v, %v; want loaded from the mirror", v, from, err)
			}
			if len(reported) != 1 || reported[0].Reason != tc.want {
				t.Fatalf("reported %v, want one %v", reported, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestNoSourceLeftIsOneTypedError(t *testing.T) {
	srcs := []source.Source{{Path: "/nonexistent/a.onnx"}, {Bytes: []byte("junk")}}
	_, _, err := source.Load(context.Background(), srcs, source.Options{}, load, nil)
	var ne *source.NoSourceError
	if !errors.Is(err, source.ErrNoSource) || !errors.As(err, &ne) || len(ne.Errs) != 2 ||
		ne.Errs[0].Reason != source.Missing || ne.Errs[1].Reason != source.Unloadable {
		t.Fatalf("got %v; want a NoSourceError, missing then unloadable", err)
	}
}

func TestAHangingServerStopsWithTheCaller(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := source.Load(ctx, []source.Source{{URL: server(t, "hang").URL}}, source.Options{}, load, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the caller's deadline", err)
	}
}

func TestASourceURLsSecretsNeverShowInErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "nope", http.StatusForbidden)
	}))
	defer srv.Close()
	// Given URLs carrying a password and a signed query,
	srcs := []source.Source{
		{URL: "http://alice:hunter2@" + srv.Listener.Addr().String() + "/m.onnx"},
		{URL: srv.URL + "/m.onnx?X-Amz-Signature=hunter2&token=hunter2"},
		{URL: "http://bob:hunter2@127.0.0.1:1/m.onnx"}, // refused: the client's own error
	}
	var reported []string
	_, _, err := source.Load(context.Background(), srcs, source.Options{Timeout: time.Second}, load,
		func(e *source.Error) { reported = append(reported, e.Error()) })
	// when every one fails, then no error and no name shows the secret,
	// while each still names its host and path.
	texts := append(reported, err.Error())
	for _, s := range srcs {
		texts = append(texts, s.String())
	}
	for _, s := range texts {
		if strings.Contains(s, "hunter2") {
			t.Errorf("a secret shows in %q", s)
		}
	}
	if !strings.Contains(err.Error(), srv.Listener.Addr().String()+"/m.onnx") {
		t.Errorf("%v does not name the source", err)
	}
}

func TestAMalformedChecksumURLOrFileIsInvalid(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(path, model, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]source.Source{
		"a checksum with a prefix": {Path: path, SHA256: "sha256:" + sum(model)},
		"a checksum cut short":     {Path: path, SHA256: sum(model)[:40]},
		"a directory":              {Path: dir},
		"a device that never ends": {Path: "/dev/zero"},
		"a URL of another scheme":  {URL: "file:///etc/passwd"},
		"a URL with no host":       {URL: "http:///m.onnx"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := source.Fetch(context.Background(), s, source.Options{})
			var se *source.Error
			if !errors.As(err, &se) || se.Reason != source.Invalid {
				t.Fatalf("Fetch = %v, want the source invalid", err)
			}
		})
	}
	// An upper-case checksum is the same checksum.
	if _, err := source.Fetch(context.Background(), source.Source{Path: path, SHA256: strings.ToUpper(sum(model))}, source.Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestAnHTTPSSourceNeverFollowsARedirectOutOfHTTPS(t *testing.T) {
	// Given a plain-http copy of the model that counts its readers,
	var clear atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		clear.Add(1)
		w.Write(model)
	}))
	defer plain.Close()
	// and an https server that redirects in the named ways,
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-http":
			u := strings.Replace(plain.URL, "http://", "http://carol:hunter2@", 1)
			http.Redirect(w, r, u+"/m.onnx?X-Amz-Signature=hunter2", http.StatusFound)
		case "/to-ftp":
			http.Redirect(w, r, "ftp://"+plain.Listener.Addr().String()+"/m.onnx", http.StatusFound)
		case "/hop":
			http.Redirect(w, r, "/m.onnx", http.StatusMovedPermanently)
		case "/m.onnx":
			w.Write(model)
		}
	}))
	defer secure.Close()
	opts := source.Options{Client: secure.Client(), Timeout: 2 * time.Second}

	for _, path := range []string{"/to-http", "/to-ftp"} {
		t.Run("refused "+path, func(t *testing.T) {
			// when a source on https is redirected out of it,
			_, err := source.Fetch(context.Background(), source.Source{URL: secure.URL + path}, opts)
			// then the fetch fails, unreachable, saying why, and never
			// reads the clear copy or shows the target's secrets.
			var se *source.Error
			if !errors.As(err, &se) || se.Reason != source.Unreachable || !errors.Is(err, source.ErrInsecureRedirect) {
				t.Fatalf("Fetch = %v, want an unreachable source refusing an insecure redirect", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a secret shows in %q", err)
			}
			if n := clear.Load(); n != 0 {
				t.Errorf("the clear copy was read %d times", n)
			}
		})
	}

	t.Run("followed within https", func(t *testing.T) {
		data, err := source.Fetch(context.Background(), source.Source{URL: secure.URL + "/hop"}, opts)
		if err != nil || !bytes.Equal(data, model) {
			t.Fatalf("Fetch = %d bytes, %v; want the model", len(data), err)
		}
	})

	t.Run("the client's own redirect policy still applies", func(t *testing.T) {
		c := *secure.Client()
		refuse := errors.New("no redirects here")
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return refuse }
		_, err := source.Fetch(context.Background(), source.Source{URL: secure.URL + "/hop"}, source.Options{Client: &c})
		if !errors.Is(err, refuse) {
			t.Fatalf("Fetch = %v, want the client's own refusal", err)
		}
		if c.CheckRedirect == nil || c.Transport != secure.Client().Transport {
			t.Error("Fetch changed the caller's client")
		}
	})

	t.Run("http to https is followed", func(t *testing.T) {
		up := httptest.NewServer(http.RedirectHandler(secure.URL+"/m.onnx", http.StatusFound))
		defer up.Close()
		data, err := source.Fetch(context.Background(), source.Source{URL: up.URL}, opts)
		if err != nil || !bytes.Equal(data, model) {
			t.Fatalf("Fetch = %d bytes, %v; want the model", len(data), err)
		}
	})
}
