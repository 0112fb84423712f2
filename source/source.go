// Package source fetches a model's bytes from an ordered list of
// redundant sources (local paths, mirrors, HTTP(S) URLs, bytes embedded in
// the binary), each optionally pinned by its SHA-256, and hands them to a
// loader, trying the next source whenever one is missing, unreachable,
// corrupt, oversized or unloadable.
//
// It is pure Go and knows nothing of ONNX: the loader is a function, such
// as one that calls models.LoadBytes.
package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"
)

// Source is one place a model can be read from. Set exactly one of Path,
// URL and Bytes.
type Source struct {
	// Path is a local file, or a mirror on another mount.
	Path string
	// URL is an http:// or https:// address, fetched with GET. Redirects
	// are followed, but a fetch that has been on https never leaves it: a
	// redirect from https to http, or from any URL to a scheme other than
	// http(s), fails with [ErrInsecureRedirect].
	URL string
	// Bytes are a model embedded in the binary (go:embed).
	Bytes []byte
	// SHA256, when set, is the hex SHA-256 the bytes must have; bytes that
	// differ are corrupt.
	SHA256 string
	// Name labels the source in errors and in what [Load] reports. The
	// default is the Path, the URL, or "embedded".
	Name string
}

// String returns the source's Name. A URL's user information and query,
// where credentials and signatures live, are shown as "xxxxx", so the
// name is safe to log.
func (s Source) String() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Path != "":
		return s.Path
	case s.URL != "":
		return redact(s.URL)
	}
	return "embedded"
}

// redact returns raw with its user information and query hidden.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URL that does not parse)"
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = "xxxxx", false
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// Options bound the fetches. The zero value means the defaults.
type Options struct {
	// Client fetches URLs. The default is a client with no timeout of its
	// own: Timeout bounds each fetch. Load and Fetch never change it: they
	// fetch with a copy whose CheckRedirect refuses an insecure redirect
	// ([ErrInsecureRedirect]) before asking Client's own CheckRedirect, or,
	// when it has none, stopping after 10 redirects as http.Client does.
	Client *http.Client
	// Timeout bounds each fetch of a URL, reading the body included.
	// Zero means [DefaultTimeout] (30s).
	Timeout time.Duration
	// MaxSize is the largest model accepted from any source, in bytes.
	// Zero means [DefaultMaxSize] (1 GiB).
	MaxSize int64
}

// Defaults of [Options].
const (
	DefaultTimeout       = 30 * time.Second
	DefaultMaxSize int64 = 1 << 30
)

// Reason says why a source was passed over.
type Reason int

// The reasons a source is passed over.
const (
	Missing     Reason = iota // no such file, or HTTP 404
	Unreachable               // a read or request failed, timed out, got another bad status, or was redirected from https to another scheme
	Corrupt                   // the bytes do not match the source's SHA256
	Oversized                 // the bytes exceed Options.MaxSize
	Unloadable                // the loader refused the bytes
	Invalid                   // the Source itself is malformed: not exactly one of Path, URL and Bytes, a URL that is not http(s), a SHA256 that is not 64 hex digits, or a Path that is not a regular file
)

var reasonNames = [...]string{"missing", "unreachable", "corrupt", "oversized", "unloadable", "invalid"}

// String returns "missing", "unreachable", "corrupt", "oversized",
// "unloadable" or "invalid".
func (r Reason) String() string {
	if r < 0 || int(r) >= len(reasonNames) {
		return fmt.Sprintf("Reason(%d)", int(r))
	}
	return reasonNames[r]
}

// ErrNoSource matches every [*NoSourceError].
var ErrNoSource = errors.New("source: no source could be loaded")

// Error reports one source passed over.
type Error struct {
	Source string // the source, as its String names it
	Reason Reason // why it was passed over
	Err    error  // the cause
}

func (e *Error) Error() string { return fmt.Sprintf("source %s: %v: %v", e.Source, e.Reason, e.Err) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// NoSourceError reports that every source was passed over, with each one's
// reason in order. It unwraps to them.
type NoSourceError struct {
	Errs []*Error // each source's reason, in the order tried
}

func (e *NoSourceError) Error() string {
	var b strings.Builder
	b.WriteString(ErrNoSource.Error())
	for _, err := range e.Errs {
		b.WriteString("; ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns each source's error.
func (e *NoSourceError) Unwrap() []error {
	out := make([]error, len(e.Errs))
	for i, err := range e.Errs {
		out[i] = err
	}
	return out
}

// Is reports whether target is [ErrNoSource].
func (e *NoSourceError) Is(target error) bool { return target == ErrNoSource }

// Load tries srcs in order: it reads each one's bytes, checks their size
// and checksum, and gives them to load. It returns the first value load
// accepts and the source it came from. It calls report, when not nil, for
// each source passed over, before trying the next; when all are, it
// returns a [*NoSourceError]. A panic in load is the source's Unloadable
// reason. Load returns ctx's error when ctx ends.
//
// Load is safe for concurrent use.
func Load[T any](ctx context.Context, srcs []Source, opts Options, load func(data []byte) (T, error), report func(*Error)) (T, Source, error) {
	var zero T
	var errs []*Error
	for _, s := range srcs {
		data, err := Fetch(ctx, s, opts)
		if err == nil {
			var v T
			if v, err = safeLoad(load, data); err == nil {
				return v, s, nil
			}
			err = &Error{Source: s.String(), Reason: Unloadable, Err: err}
		}
		if ctx.Err() != nil {
			return zero, Source{}, ctx.Err()
		}
		var se *Error
		if !errors.As(err, &se) {
			se = &Error{Source: s.String(), Reason: Unreachable, Err: err}
		}
		errs = append(errs, se)
		if report != nil {
			report(se)
		}
	}
	return zero, Source{}, &NoSourceError{Errs: errs}
}

func safeLoad[T any](load func([]byte) (T, error), data []byte) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("loader panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return load(data)
}

// Fetch reads one source's bytes and checks their size and checksum. Its
// error is an [*Error] saying why the source is passed over, or ctx's.
func Fetch(ctx context.Context, s Source, opts Options) ([]byte, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	fail := func(r Reason, err error) ([]byte, error) {
		return nil, &Error{Source: s.String(), Reason: r, Err: err}
	}
	var data []byte
	switch n := btoi(s.Path != "") + btoi(s.URL != "") + btoi(s.Bytes != nil); {
	case n != 1:
		return fail(Invalid, errors.New("set exactly one of Path, URL and Bytes"))
	case s.SHA256 != "" && !isSHA256(s.SHA256):
		return fail(Invalid, fmt.Errorf("SHA256 %q is not 64 hex digits", s.SHA256))
	case s.Bytes != nil:
		data = s.Bytes
	case s.Path != "":
		fi, err := os.Stat(s.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fail(Missing, err)
		case err != nil:
			return fail(Unreachable, err)
		case !fi.Mode().IsRegular():
			// A directory, a device or a pipe: its size says nothing, and a
			// read could block or never end.
			return fail(Invalid, fmt.Errorf("not a regular file: %v", fi.Mode()))
		case fi.Size() > opts.MaxSize:
			return fail(Oversized, fmt.Errorf("%d bytes, more than the limit of %d", fi.Size(), opts.MaxSize))
		}
		f, err := os.Open(s.Path)
		if err != nil {
			return fail(Unreachable, err)
		}
		defer f.Close()
		if data, err = readLimited(f, opts.MaxSize); err != nil {
			return fail(reasonOf(err), err)
		}
	default:
		var err error
		if data, err = get(ctx, s.URL, opts); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return fail(reasonOf(err), err)
		}
	}
	if int64(len(data)) > opts.MaxSize {
		return fail(Oversized, fmt.Errorf("%d bytes, more than the limit of %d", len(data), opts.MaxSize))
	}
	if s.SHA256 != "" {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, s.SHA256) {
			return fail(Corrupt, fmt.Errorf("sha256 is %s, want %s (%d bytes)", got, s.SHA256, len(data)))
		}
	}
	return data, nil
}

func isSHA256(s string) bool {
	_, err := hex.DecodeString(s)
	return len(s) == 2*sha256.Size && err == nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// errTooBig and errNotFound classify a failed read.
var (
	errTooBig   = errors.New("larger than the size limit")
	errNotFound = errors.New("not found")
)

func reasonOf(err error) Reason {
	switch {
	case errors.Is(err, errTooBig):
		return Oversized
	case errors.Is(err, errNotFound):
		return Missing
	case errors.Is(err, errBadURL):
		return Invalid
	}
	return Unreachable
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w of %d bytes", errTooBig, limit)
	}
	return data, nil
}

// errBadURL marks a URL that is no source at all.
var errBadURL = errors.New("not an http or https URL")

// ErrInsecureRedirect is the cause, inside the source's Unreachable
// [*Error], when a fetch that has been on https is redirected to http or
// to another scheme, or any fetch is redirected to a scheme other than
// http(s). The redirect is not followed, so a model pinned to https is
// never read in the clear. The error names the refused target, with its
// user information and query hidden.
var ErrInsecureRedirect = errors.New("source: refused a redirect that leaves https")

// guardRedirects returns a copy of c that refuses insecure redirects.
func guardRedirects(c *http.Client) *http.Client {
	guarded := &http.Client{}
	if c != nil {
		*guarded = *c
	}
	next := guarded.CheckRedirect
	guarded.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		to := req.URL.Scheme
		secure := false
		for _, r := range via {
			secure = secure || r.URL.Scheme == "https"
		}
		if (secure && to != "https") || (to != "http" && to != "https") {
			return fmt.Errorf("%w: to %s", ErrInsecureRedirect, redact(req.URL.String()))
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return guarded
}

func get(ctx context.Context, raw string, opts Options) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errBadURL // the parser's error would quote the URL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, errBadURL
	}
	resp, err := guardRedirects(opts.Client).Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			uerr.URL = redact(uerr.URL) // the client hides a password, not a query
		}
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", errNotFound, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s", resp.Status)
	case resp.ContentLength > opts.MaxSize:
		return nil, fmt.Errorf("%w of %d bytes: Content-Length is %d", errTooBig, opts.MaxSize, resp.ContentLength)
	}
	return readLimited(resp.Body, opts.MaxSize)
}
