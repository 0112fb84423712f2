package ladderhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// Headers the handler reads and writes.
const (
	// HeaderRequestID carries the request id: kept and echoed when the
	// request has one, made up otherwise.
	HeaderRequestID = "X-Request-Id"

	// HeaderMaxStaleness sets the oldest cached answer the caller
	// accepts, as a Go duration ("2s", "500ms"); "0" means never a cached
	// answer (router.MaxStaleness of a negative duration). Query parameter
	// max_staleness does the same.
	HeaderMaxStaleness = "Ladder-Max-Staleness"
	// HeaderLowestTier sets the lowest rung the caller accepts, by name.
	// Query parameter lowest_tier does the same.
	HeaderLowestTier = "Ladder-Lowest-Tier"
	// HeaderTimeout sets the caller's deadline, as a Go duration. Query
	// parameter timeout does the same. Without it the request's own
	// context (the server's or a proxy's deadline) bounds the prediction.
	HeaderTimeout = "Ladder-Timeout"

	// HeaderTier names the rung that served.
	HeaderTier = "Ladder-Tier"
	// HeaderDegraded is "true" when a rung below the first served.
	HeaderDegraded = "Ladder-Degraded"
	// HeaderVersion is the version of the model that made the answer.
	HeaderVersion = "Ladder-Version"
	// HeaderAge is a cached answer's age, as a Go duration.
	HeaderAge = "Ladder-Age"
	// HeaderOrigin is the tier that made a cached answer.
	HeaderOrigin = "Ladder-Origin"
	// HeaderAttempts is the number of attempts the serving rung took.
	HeaderAttempts = "Ladder-Attempts"
	// HeaderFell lists the rungs that fell before the one that served, and
	// why: "primary=breaker_open, backup=timeout".
	HeaderFell = "Ladder-Fell"
)

// StatusClientClosedRequest is the status logged and reported to the
// [Observer] when the client went away before the answer: nobody reads it.
const StatusClientClosedRequest = 499

// Observer is told about every prediction request the handler takes, for
// metrics. *ladderprom.Metrics implements it. Both methods run on the
// request path and must be safe for concurrent use.
type Observer interface {
	// Started is called when a prediction request arrives.
	Started()
	// Finished is called when it ends: with the answer, or with the
	// error that made it fail (a [*RequestError], an error matching
	// [tensor.ErrInvalidInput], a [*router.NoAnswerError], or the
	// context's error), and the time the handler took.
	Finished(a router.Answer, err error, elapsed time.Duration)
}

type nopObserver struct{}

func (nopObserver) Started()                                     {}
func (nopObserver) Finished(router.Answer, error, time.Duration) {}

// Options configures a [Handler]. The zero value is the documented
// default of every field.
type Options struct {
	// Logger, when set, logs every request: its id, status, the rung
	// that served, the latency and, for a failure, the error chain.
	// Successes log at Debug, degraded answers and 4xx at Info, 5xx at
	// Warn. The default is silence.
	Logger *slog.Logger

	// Observer, when set, is told about every prediction request. The
	// default observes nothing.
	Observer Observer

	// MaxBodyBytes is the largest request body accepted; a larger one
	// gets 413. The default is 1 MiB.
	MaxBodyBytes int64

	// VectorInput names the input the "vector" shorthand fills. The
	// default is "features".
	VectorInput string

	// Required lists rungs, by name, that must be able to serve for
	// /readyz to report ready. The default is none: ready as soon as any
	// rung can answer a new input.
	Required []string

	// Clock is the clock, for latencies, Retry-After and the readiness
	// report; give it the router's ([router.Config].Clock). Nil means
	// clock.Real.
	Clock clock.Clock
}

// Handler serves a [router.Router] over HTTP: predictions at ServeHTTP,
// and the probes [Handler.Healthz] and [Handler.Readyz]. It is safe for
// concurrent use.
type Handler struct {
	r        *router.Router
	log      *slog.Logger
	obs      Observer
	maxBody  int64
	vector   string
	required []string
	rungs    []string
	now      func() time.Time
	fell     []atomic.Pointer[fallNote] // by rung position: the latest fall
}

// fallNote is the latest reason a rung fell, for the readiness report.
type fallNote struct {
	reason, err string
	at          time.Time
}

// New returns a handler serving r. It returns an error when
// opts.Required names a rung r does not have.
func New(r *router.Router, opts Options) (*Handler, error) {
	if r == nil {
		return nil, errors.New("ladderhttp: New: nil router")
	}
	h := &Handler{
		r:        r,
		log:      opts.Logger,
		obs:      opts.Observer,
		maxBody:  opts.MaxBodyBytes,
		vector:   opts.VectorInput,
		required: slices.Clone(opts.Required),
		rungs:    r.Rungs(),
		now:      clock.Or(opts.Clock).Now,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.obs == nil {
		h.obs = nopObserver{}
	}
	if h.maxBody <= 0 {
		h.maxBody = 1 << 20
	}
	if h.vector == "" {
		h.vector = "features"
	}
	for _, name := range h.required {
		if !slices.Contains(h.rungs, name) {
			return nil, fmt.Errorf("ladderhttp: New: required rung %q is not in the ladder; expected one of %s", name, strings.Join(h.rungs, ", "))
		}
	}
	h.fell = make([]atomic.Pointer[fallNote], len(h.rungs))
	return h, nil
}

// bufPool holds the buffers bodies are read into and answers written
// from. A buffer grown past 64 KiB by a large request is dropped rather
// than kept.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func putBuf(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		bufPool.Put(bp)
	}
}

// ServeHTTP answers a prediction request: POST a JSON body of named inputs
// or the "vector" shorthand, get the outputs and their provenance. See the
// package doc for the status codes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := h.now()
	id := requestID(req)
	w.Header()[HeaderRequestID] = []string{id}
	if req.Method != http.MethodPost {
		w.Header()["Allow"] = []string{http.MethodPost}
		h.fail(w, req, id, start, http.StatusMethodNotAllowed, "method_not_allowed",
			&RequestError{Problem: "method " + req.Method + " not allowed", Expected: "POST"}, nil)
		return
	}
	h.obs.Started()
	a, status, err := h.predict(w, req, start)
	h.obs.Finished(a, err, h.now().Sub(start))
	if err != nil {
		h.failed(w, req, id, start, status, err)
		return
	}
	h.answer(w, req, id, start, a)
}

// predict reads the request, runs the ladder, and returns the answer or
// the error with the status it earns.
func (h *Handler) predict(w http.ResponseWriter, req *http.Request, start time.Time) (router.Answer, int, error) {
	bp := bufPool.Get().(*[]byte)
	defer putBuf(bp)
	body, err := readBody(w, req, h.maxBody, (*bp)[:0])
	*bp = body[:0]
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return router.Answer{}, http.StatusRequestEntityTooLarge, &RequestError{Problem: "body too large", Expected: fmt.Sprintf("at most %d bytes", tooBig.Limit)}
		}
		if req.Context().Err() != nil {
			return router.Answer{}, StatusClientClosedRequest, fmt.Errorf("ladderhttp: reading the body: %w", err)
		}
		return router.Answer{}, http.StatusBadRequest, &RequestError{Problem: "unreadable body: " + err.Error(), Expected: "a complete JSON body"}
	}
	ctx, opts, cancel, err := h.options(req, start)
	if err != nil {
		return router.Answer{}, http.StatusBadRequest, err
	}
	defer cancel()
	inputs, err := decodeRequest(body, h.vector)
	if err != nil {
		return router.Answer{}, http.StatusBadRequest, err
	}
	a, err := h.r.Predict(ctx, inputs, opts...)
	h.noteFalls(a, err)
	if err == nil {
		return a, http.StatusOK, nil
	}
	return a, h.status(req.Context(), ctx, err), err
}

func readBody(w http.ResponseWriter, req *http.Request, limit int64, buf []byte) ([]byte, error) {
	if req.ContentLength > limit {
		return buf, &http.MaxBytesError{Limit: limit}
	}
	r := http.MaxBytesReader(w, req.Body, limit)
	if n := req.ContentLength; n > 0 && int64(cap(buf)) < n+1 {
		buf = make([]byte, 0, n+1)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// options reads the caller's limits from the headers or the query.
func (h *Handler) options(req *http.Request, start time.Time) (context.Context, []router.CallOption, context.CancelFunc, error) {
	var (
		query url.Values // nil, and free, without a query string
		opts  []router.CallOption
	)
	if req.URL.RawQuery != "" {
		query = req.URL.Query()
	}
	if v, name := param(req, query, HeaderMaxStaleness, "max_staleness"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, nil, nil, &RequestError{Field: name, Problem: "not a duration", Expected: `a Go duration ≥ 0, such as "2s" or "0"`, Got: strconv.Quote(v)}
		}
		if d == 0 {
			d = -1 // never a cached answer
		}
		opts = append(opts, router.MaxStaleness(d))
	}
	if v, name := param(req, query, HeaderLowestTier, "lowest_tier"); v != "" {
		if !slices.Contains(h.rungs, v) {
			return nil, nil, nil, &RequestError{Field: name, Problem: "no such rung", Expected: "one of " + strings.Join(h.rungs, ", "), Got: strconv.Quote(v)}
		}
		opts = append(opts, router.LowestTier(v))
	}
	ctx := req.Context()
	cancel := context.CancelFunc(func() {})
	if v, name := param(req, query, HeaderTimeout, "timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, nil, nil, &RequestError{Field: name, Problem: "not a duration", Expected: `a Go duration > 0, such as "250ms"`, Got: strconv.Quote(v)}
		}
		ctx, cancel = context.WithDeadline(ctx, start.Add(d))
	}
	return ctx, opts, cancel, nil
}

// param returns the header's value, else the query parameter's, and the
// name of the one that was set.
func param(req *http.Request, query url.Values, header, key string) (string, string) {
	if v := req.Header[header]; len(v) > 0 && v[0] != "" {
		return v[0], header
	}
	if v := query[key]; len(v) > 0 {
		return v[0], key
	}
	return "", ""
}

// status maps a failed prediction to its HTTP status. reqCtx is the
// request's own context, ctx the one the prediction ran under.
func (h *Handler) status(reqCtx, ctx context.Context, err error) int {
	switch {
	case errors.Is(err, tensor.ErrInvalidInput):
		return http.StatusBadRequest
	case reqCtx.Err() == context.Canceled:
		return StatusClientClosedRequest
	case ctx.Err() == context.DeadlineExceeded, h.deadlineSpent(ctx):
		return http.StatusGatewayTimeout
	case errors.Is(err, router.ErrNoAnswer), errors.Is(err, router.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// deadlineSpent reports whether ctx's deadline has passed or is within a
// millisecond: the router budgets a deadline across the rungs, and the
// last ones fall for want of time just before it passes.
func (h *Handler) deadlineSpent(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && dl.Sub(h.now()) < time.Millisecond
}

// noteFalls keeps the latest reason each rung fell, for /readyz?verbose.
func (h *Handler) noteFalls(a router.Answer, err error) {
	falls := a.Fell
	var na *router.NoAnswerError
	if errors.As(err, &na) {
		falls = na.Falls
	}
	if len(falls) == 0 {
		return
	}
	now := h.now()
	for _, f := range falls {
		if f.Position < 0 || f.Position >= len(h.fell) || errors.Is(f.Err, router.ErrNotAccepted) {
			continue
		}
		h.fell[f.Position].Store(&fallNote{reason: string(f.Outcome), err: f.Err.Error(), at: now})
	}
}

// answer writes a 200 with the outputs and their provenance.
func (h *Handler) answer(w http.ResponseWriter, req *http.Request, id string, start time.Time, a router.Answer) {
	hd := w.Header()
	hd["Content-Type"] = []string{"application/json"}
	hd[HeaderTier] = []string{a.Tier}
	hd[HeaderDegraded] = []string{strconv.FormatBool(a.Degraded)}
	hd[HeaderAttempts] = []string{strconv.Itoa(a.Attempts)}
	if a.Version != "" {
		hd[HeaderVersion] = []string{a.Version}
	}
	if a.Origin != "" {
		hd[HeaderOrigin] = []string{a.Origin}
		hd[HeaderAge] = []string{a.Age.String()}
	}
	if len(a.Fell) > 0 {
		var s strings.Builder
		for i, f := range a.Fell {
			if i > 0 {
				s.WriteString(", ")
			}
			s.WriteString(f.Tier)
			s.WriteByte('=')
			s.WriteString(string(f.Outcome))
		}
		hd[HeaderFell] = []string{s.String()}
	}
	bp := bufPool.Get().(*[]byte)
	b := appendAnswer((*bp)[:0], a, id)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	*bp = b[:0]
	putBuf(bp)

	level := slog.LevelDebug
	if a.Degraded {
		level = slog.LevelInfo
	}
	if h.log.Enabled(req.Context(), level) {
		attrs := []slog.Attr{
			slog.String("request_id", id), slog.Int("status", http.StatusOK),
			slog.String("tier", a.Tier), slog.Bool("degraded", a.Degraded),
			slog.Int("attempts", a.Attempts), slog.Duration("latency", h.now().Sub(start)),
		}
		if len(a.Fell) > 0 {
			attrs = append(attrs, slog.Any("fell", fallsAttr(a.Fell)))
		}
		h.log.LogAttrs(req.Context(), level, "ladderhttp: answered", attrs...)
	}
}

// appendAnswer writes the success body.
func appendAnswer(b []byte, a router.Answer, id string) []byte {
	b = append(b, `{"outputs":{`...)
	for i, t := range a.Outputs {
		b = appendString(comma(b, i), t.Name)
		b = append(b, ':')
		b = appendTensor(b, t)
	}
	b = append(b, `},"tier":`...)
	b = appendString(b, a.Tier)
	b = append(b, `,"position":`...)
	b = strconv.AppendInt(b, int64(a.Position), 10)
	b = append(b, `,"kind":"`...)
	b = append(b, a.Kind.String()...)
	b = append(b, `","degraded":`...)
	b = strconv.AppendBool(b, a.Degraded)
	b = append(b, `,"version":`...)
	b = appendString(b, a.Version)
	if a.Origin != "" {
		b = append(b, `,"origin":`...)
		b = appendString(b, a.Origin)
		b = append(b, `,"age_seconds":`...)
		b = strconv.AppendFloat(b, a.Age.Seconds(), 'f', -1, 64)
	}
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(a.Attempts), 10)
	b = append(b, `,"fell":[`...)
	for i, f := range a.Fell {
		b = appendFall(comma(b, i), f)
	}
	b = append(b, `],"latency_seconds":`...)
	b = strconv.AppendFloat(b, a.Latency.Seconds(), 'f', -1, 64)
	b = append(b, `,"request_id":`...)
	b = appendString(b, id)
	return append(b, "}\n"...)
}

func appendFall(b []byte, f router.Fall) []byte {
	b = append(b, `{"tier":`...)
	b = appendString(b, f.Tier)
	b = append(b, `,"position":`...)
	b = strconv.AppendInt(b, int64(f.Position), 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(f.Attempts), 10)
	b = append(b, `,"reason":"`...)
	b = append(b, string(f.Outcome)...)
	b = append(b, `","error":`...)
	b = appendString(b, f.Err.Error())
	return append(b, '}')
}

// fallsAttr renders the falls as "tier=reason: error" for a log line.
func fallsAttr(falls []router.Fall) []string {
	out := make([]string, len(falls))
	for i, f := range falls {
		out[i] = f.Tier + "=" + string(f.Outcome) + ": " + f.Err.Error()
	}
	return out
}

// errorBody is the JSON of every non-2xx response.
type errorBody struct {
	Error     errorDetail `json:"error"`
	Tiers     []tierFall  `json:"tiers,omitempty"`
	RequestID string      `json:"request_id"`
}

type errorDetail struct {
	Status   int    `json:"status"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Field    string `json:"field,omitempty"`
	Expected string `json:"expected,omitempty"`
	Got      string `json:"got,omitempty"`
}

type tierFall struct {
	Tier     string `json:"tier"`
	Position int    `json:"position"`
	Attempts int    `json:"attempts"`
	Reason   string `json:"reason"`
	Error    string `json:"error"`
}

// failed writes the response of a prediction that failed with err.
func (h *Handler) failed(w http.ResponseWriter, req *http.Request, id string, start time.Time, status int, err error) {
	code := "internal"
	switch status {
	case http.StatusBadRequest:
		code = "invalid_input"
	case http.StatusRequestEntityTooLarge:
		code = "body_too_large"
	case http.StatusGatewayTimeout:
		code = "deadline_exceeded"
	case http.StatusServiceUnavailable:
		code = "no_answer"
	case StatusClientClosedRequest:
		code = "client_closed"
	}
	var falls []router.Fall
	var na *router.NoAnswerError
	if errors.As(err, &na) {
		falls = na.Falls
	}
	if status == http.StatusServiceUnavailable {
		if errors.Is(err, router.ErrClosed) {
			code = "closed"
		}
		if after, ok := h.retryAfter(); ok {
			w.Header()["Retry-After"] = []string{strconv.Itoa(after)}
		}
	}
	h.fail(w, req, id, start, status, code, err, falls)
}

// retryAfter returns the whole seconds until the first open breaker lets a
// probe through, when one will.
func (h *Handler) retryAfter() (int, bool) {
	var first time.Time
	for _, g := range h.r.Status() {
		if !g.Until.IsZero() && (first.IsZero() || g.Until.Before(first)) {
			first = g.Until
		}
	}
	if first.IsZero() {
		return 0, false
	}
	d := first.Sub(h.now())
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1), true
}

func (h *Handler) fail(w http.ResponseWriter, req *http.Request, id string, start time.Time, status int, code string, err error, falls []router.Fall) {
	body := errorBody{Error: errorDetail{Status: status, Code: code, Message: err.Error()}, RequestID: id}
	var re *RequestError
	var ie *tensor.InputError
	switch {
	case errors.As(err, &re):
		body.Error.Field, body.Error.Expected, body.Error.Got = re.Field, re.Expected, re.Got
	case errors.As(err, &ie):
		body.Error.Field = "inputs"
		if ie.Input != "" {
			body.Error.Field += "." + ie.Input
		}
		body.Error.Expected, body.Error.Got = ie.Expected, ie.Got
	}
	for _, f := range falls {
		body.Tiers = append(body.Tiers, tierFall{Tier: f.Tier, Position: f.Position, Attempts: f.Attempts, Reason: string(f.Outcome), Error: f.Err.Error()})
	}
	if status != StatusClientClosedRequest {
		var b bytes.Buffer
		_ = json.NewEncoder(&b).Encode(body)
		w.Header()["Content-Type"] = []string{"application/json"}
		w.WriteHeader(status)
		_, _ = w.Write(b.Bytes())
	}

	level := slog.LevelInfo
	if status >= 500 && status != StatusClientClosedRequest {
		level = slog.LevelWarn
	}
	if h.log.Enabled(req.Context(), level) {
		attrs := []slog.Attr{
			slog.String("request_id", id), slog.Int("status", status), slog.String("code", code),
			slog.String("err", err.Error()), slog.Duration("latency", h.now().Sub(start)),
		}
		if len(falls) > 0 {
			attrs = append(attrs, slog.Any("fell", fallsAttr(falls)))
		}
		h.log.LogAttrs(req.Context(), level, "ladderhttp: failed", attrs...)
	}
}

// requestID returns the request's X-Request-Id when it is a sane one, or
// makes one up.
func requestID(req *http.Request) string {
	if v := req.Header[HeaderRequestID]; len(v) > 0 && validID(v[0]) {
		return v[0]
	}
	var b [16]byte
	x, y := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = hexDigits[(x>>(4*i))&0xf]
		b[8+i] = hexDigits[(y>>(4*i))&0xf]
	}
	return string(b[:])
}

// validID accepts 1 to 128 printable ASCII characters, so an id can go in
// a log line and a header unescaped.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := range len(s) {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
