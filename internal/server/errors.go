package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/dsr"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/membudget"
	"gabarit/internal/rights"
	"gabarit/internal/search"
	"gabarit/internal/store"
)

// apiError is an answer to a failed request: an HTTP status, a stable
// machine-readable code and a message for people. It never carries
// internal details.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func newError(status int, code, format string, a ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

// badRequest is a 400 with code "invalid" naming what is wrong.
func badRequest(format string, a ...any) *apiError {
	return newError(http.StatusBadRequest, "invalid", format, a...)
}

// Errors shared by handlers.
var (
	errNotFound        = newError(http.StatusNotFound, "not_found", "no such resource")
	errMethod          = newError(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this resource")
	errUnauthenticated = newError(http.StatusUnauthorized, "unauthenticated", "sign in, or send a valid bearer token")
	errForbidden       = newError(http.StatusForbidden, "forbidden", "your roles do not allow this")
	errCSRF            = newError(http.StatusForbidden, "csrf", "missing or wrong CSRF token, or a cross-site request")
	errNoFace          = newError(http.StatusUnprocessableEntity, "no_face", "no face was found in the photo")
	errNotImage        = newError(http.StatusUnsupportedMediaType, "not_an_image", "the upload is not an image gabarit reads (%s)", imageproc.Readable())
	errBusy            = newError(http.StatusServiceUnavailable, "busy", "the server is shutting down or overloaded; try again")
	errAuditStopped    = newError(http.StatusServiceUnavailable, "audit_stopped",
		"audited actions are stopped: the audit log no longer matches its witness, so entries may have been removed. "+
			"An administrator must check it (gabarit audit verify) before anything audited can be done again")
)

// errMemoryBusy answers a photo whose memory was not free in the budget
// within Server.Config.BudgetWait.
var errMemoryBusy = newError(http.StatusServiceUnavailable, "busy",
	"the server is busy decoding other large photos; try again in a minute, or send a smaller photo (an 8-bit JPEG)")

// classify maps an error to its answer; internal errors become a 500 that
// names only the request id.
func classify(err error, reqID string) *apiError {
	var ae *apiError
	var mbe *http.MaxBytesError
	var tbe *membudget.TooBigError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return tooLarge(nil, mbe.Limit)
	case errors.Is(err, store.ErrNotFound):
		return errNotFound
	case errors.Is(err, store.ErrForbidden):
		// A rule of the action, not of the caller's roles: confirming
		// one's own search, a disabled account.
		return newError(http.StatusForbidden, "not_allowed", "%s", plain(err))
	case errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrExpired):
		return errUnauthenticated
	case errors.Is(err, search.ErrBelowOperatingPoint):
		// Written for users: the threshold asked, the operating point and
		// what would allow going lower; nothing internal.
		return newError(http.StatusForbidden, "below_operating_point", "%s", err.Error())
	case errors.Is(err, app.ErrBadCursor):
		return newError(http.StatusBadRequest, "invalid_cursor", "%s: page with the next_cursor of an answer", err.Error())
	case errors.Is(err, app.ErrNoProbeCrop):
		return newError(http.StatusNotFound, "no_probe_crop", "%s", err.Error())
	case errors.Is(err, store.ErrRejected):
		// A verifier rejected the result: it is never confirmed.
		return newError(http.StatusConflict, "rejected", "%s", plain(err))
	case errors.Is(err, search.ErrNoPurpose):
		return newError(http.StatusBadRequest, "missing_purpose", "a search must state its purpose")
	case errors.Is(err, search.ErrBadRequest), errors.Is(err, store.ErrInvalid), errors.Is(err, dsr.ErrInvalid):
		// Validation errors describe the caller's input, nothing internal.
		return newError(http.StatusBadRequest, "invalid", "%s", plain(err))
	case errors.Is(err, dsr.ErrTooLate):
		return newError(http.StatusConflict, "conflict", "it is too late for this: the deadline it had to meet has passed")
	case errors.Is(err, dsr.ErrAlreadyExtended):
		return newError(http.StatusConflict, "conflict", "this request was extended already: a deadline is extended once")
	case errors.Is(err, rights.ErrNotOpen):
		return newError(http.StatusConflict, "conflict", "%s", fromSentinel(err, rights.ErrNotOpen))
	case errors.Is(err, store.ErrExists), errors.Is(err, dsr.ErrIllegalTransition):
		// The request conflicts with the state of what it acts on; the
		// message names the rule, nothing internal.
		return newError(http.StatusConflict, "conflict", "%s", plain(err))
	// The rights engine's refusals are written for people: their text and
	// what follows it, without the request number that wraps them.
	case errors.Is(err, rights.ErrNoCandidates):
		return newError(http.StatusConflict, "no_candidates", "%s", fromSentinel(err, rights.ErrNoCandidates))
	case errors.Is(err, rights.ErrNotReviewed):
		return newError(http.StatusConflict, "not_reviewed", "%s", fromSentinel(err, rights.ErrNotReviewed))
	case errors.Is(err, rights.ErrNoIdentity):
		return newError(http.StatusConflict, "no_identity_check", "%s", fromSentinel(err, rights.ErrNoIdentity))
	case errors.Is(err, rights.ErrStale):
		return newError(http.StatusConflict, "stale_review", "%s", fromSentinel(err, rights.ErrStale))
	case errors.Is(err, rights.ErrActing):
		return newError(http.StatusConflict, "acting", "%s", fromSentinel(err, rights.ErrActing))
	case errors.Is(err, face.ErrNoFace):
		return errNoFace
	case errors.Is(err, imageproc.ErrUnsupportedFormat):
		// imageproc.Message names what the file is (or is not), never its bytes.
		return newError(http.StatusUnsupportedMediaType, "not_an_image", "%s", imageproc.Message(err))
	case errors.Is(err, imageproc.ErrCorrupt), errors.Is(err, imageproc.ErrTooLarge):
		// Damaged, or over the limits: the message says which, with the numbers.
		return newError(http.StatusUnprocessableEntity, "bad_image", "%s", imageproc.Message(err))
	case errors.As(err, &tbe):
		// An image the whole memory budget cannot decode: like a photo
		// over the limits, with the numbers.
		return newError(http.StatusUnprocessableEntity, "bad_image", "%s", tbe.Error())
	case errors.As(err, new(*membudget.BusyError)):
		return errMemoryBusy
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errBusy
	case errors.Is(err, store.ErrAuditTampered):
		// Audited actions stop until an administrator looks; the details
		// (which entries) are for them, in gabarit audit verify.
		return errAuditStopped
	}
	return newError(http.StatusInternalServerError, "internal", "internal error (request %s); the details are in the server's log", reqID)
}

// wrapWords are the texts that sentinel errors add to a message, which
// say nothing to people ("invalid argument", "already exists").
var wrapWords = []error{store.ErrInvalid, store.ErrExists, store.ErrForbidden, store.ErrNotFound, store.ErrRejected,
	store.ErrNotReturned, dsr.ErrInvalid, dsr.ErrIllegalTransition, search.ErrBadRequest}

// plain returns what err says is wrong, for people: its message without
// the text of its sentinel (": invalid argument") and without the
// operations that wrapped it ("add user: ", "confirm search 3 face 7: "),
// which are the leading clauses that quote nothing: "unknown role "x"",
// "already confirmed by this user", while "time zone "Mars": name an IANA
// zone" is kept whole. An error that says nothing more than its operation
// and its sentinel gets the sentinel's meaning in words.
func plain(err error) string {
	msg := err.Error()
	for _, w := range wrapWords {
		t := w.Error()
		msg = strings.ReplaceAll(msg, ": "+t, "")
		if rest, ok := strings.CutPrefix(msg, t+": "); ok {
			msg = rest
		}
	}
	clauses := splitClauses(msg)
	if len(clauses) == 1 && strings.HasPrefix(err.Error(), msg+": ") {
		// Only the operation and the sentinel: say what the sentinel means.
		for _, g := range []struct {
			sentinel error
			text     string
		}{{store.ErrExists, "this exists already"}, {store.ErrForbidden, "this is not allowed"}, {store.ErrNotFound, "this is not found"}} {
			if errors.Is(err, g.sentinel) {
				return g.text
			}
		}
		return "the request is not valid"
	}
	for len(clauses) > 1 && !strings.Contains(clauses[0], `"`) {
		clauses = clauses[1:]
	}
	if msg = strings.Join(clauses, ": "); msg == "" {
		return err.Error()
	}
	return msg
}

// splitClauses splits msg at each ": " outside double-quoted text.
func splitClauses(msg string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(msg); i++ {
		switch {
		case msg[i] == '\\' && quoted:
			i++ // an escaped character of a quoted string
		case msg[i] == '"':
			quoted = !quoted
		case !quoted && strings.HasPrefix(msg[i:], ": "):
			out = append(out, msg[start:i])
			start = i + 2
		}
	}
	return append(out, msg[start:])
}

// fromSentinel returns err's message from the text of sentinel on, which
// was written for people, without the operations that wrapped it
// ("request 12: "); the sentinel's text when it is not found.
func fromSentinel(err, sentinel error) string {
	msg, t := err.Error(), sentinel.Error()
	if i := strings.Index(msg, t); i >= 0 {
		return msg[i:]
	}
	return t
}

// tooLarge explains a body over limit bytes: how large it is, when the
// request says so, the limit, and what to do. Bodies of photos (multipart
// forms) and of JSON or form fields are told apart; r may be nil.
func tooLarge(r *http.Request, limit int64) *apiError {
	size := int64(-1)
	var photos, several bool
	if r != nil {
		size = r.ContentLength
		photos = strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data")
		route := routeOf(r)
		several = strings.Contains(route, "/rights") || strings.Contains(route, "/portal")
	}
	what, todo := "the request body", "Send less"
	switch {
	case photos && several:
		what, todo = "the photos", "Send fewer or smaller photos (e.g. export them as JPEG)"
	case photos:
		what, todo = "the photo", "Send a smaller photo (e.g. export it as JPEG)"
	}
	verb := "is"
	if what == "the photos" {
		verb = "are"
	}
	if size > limit {
		return newError(http.StatusRequestEntityTooLarge, "too_large", "%s %s %s; the limit is %s. %s",
			what, verb, byteSize(size), byteSize(limit), todo)
	}
	return newError(http.StatusRequestEntityTooLarge, "too_large", "%s %s larger than the limit of %s. %s", what, verb, byteSize(limit), todo)
}

// byteSize writes n bytes for people: "20 MiB", "28.6 MiB", "64 KiB".
func byteSize(n int64) string {
	unit, div := "bytes", 1.0
	switch {
	case n >= 1<<30:
		unit, div = "GiB", 1<<30
	case n >= 1<<20:
		unit, div = "MiB", 1<<20
	case n >= 1<<10:
		unit, div = "KiB", 1<<10
	}
	v := strconv.FormatFloat(float64(n)/div, 'f', 1, 64)
	return strings.TrimSuffix(v, ".0") + " " + unit
}

// fail answers a failed request: JSON for the API, an HTML page for the
// console and the portal. Internal errors are logged with the request id.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, kind routeKind, err error) {
	ae := s.pageError(r, err)
	if kind == page || kind == pageForm {
		s.errorPage(w, r, ae)
		return
	}
	writeJSON(w, ae.Status, ae)
}

// pageError classifies err for the caller (see classify), logging internal
// errors with the request id and counting every error in the metrics: the
// answer of fail, and the message a console form shows on its page.
func (s *Server) pageError(r *http.Request, err error) *apiError {
	id := requestID(r)
	ae := classify(err, id)
	if mbe := (*http.MaxBytesError)(nil); ae.Code == "too_large" && errors.As(err, &mbe) {
		ae = tooLarge(r, mbe.Limit) // the body's size and what to do
	}
	if ae.Status >= 500 && ae.Code == "internal" {
		s.log.Error("request failed", "request_id", id, "route", routeOf(r), "err", err)
	}
	s.metrics.errors.WithLabelValues(ae.Code).Inc()
	return ae
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

// decodeJSON reads a JSON body into v, refusing unknown fields, trailing
// data and other media types.
func decodeJSON(r *http.Request, v any) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return newError(http.StatusUnsupportedMediaType, "want_json", "send application/json")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(r, mbe.Limit)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return badRequest("field %q: want %s, got %s", te.Field, te.Type, te.Value)
		}
		return badRequest("the body is not valid JSON for this request: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("trailing data after the JSON body")
	}
	return nil
}

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyRoute
)

// routeSlot holds the matched route's name for logs and metrics.
type routeSlot struct{ name string }

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(keyRequestID).(string)
	return id
}

func setRoute(r *http.Request, name string) {
	if slot, ok := r.Context().Value(keyRoute).(*routeSlot); ok {
		slot.name = name
	}
}

func routeOf(r *http.Request) string {
	if slot, ok := r.Context().Value(keyRoute).(*routeSlot); ok && slot.name != "" {
		return slot.name
	}
	return "other"
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware wraps every response: a request id, security headers, no
// caching unless a handler allows it, panic recovery, a log line and the
// request metrics. Logs name the route pattern, never query strings,
// bodies, names or e-mail addresses.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
		id := hex.EncodeToString(b[:])
		slot := &routeSlot{}
		ctx := context.WithValue(context.WithValue(r.Context(), keyRequestID, id), keyRoute, slot)
		r = r.WithContext(ctx)
		h := w.Header()
		h.Set("X-Request-Id", id)
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "+
			"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		h.Set("Cache-Control", "no-store")
		if s.cfg.SecureCookies {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				buf := make([]byte, 8<<10)
				buf = buf[:runtime.Stack(buf, false)]
				s.log.Error("panic", "request_id", id, "route", routeOf(r), "panic", fmt.Sprint(v), "stack", string(buf))
				if sw.status == 0 {
					writeJSON(sw, http.StatusInternalServerError, classify(errors.New("panic"), id))
				}
			}
			d := time.Since(start)
			route := routeOf(r)
			s.metrics.observe(route, sw.status, d)
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("request_id", id), slog.String("method", r.Method),
				slog.String("route", route), slog.Int("status", sw.status), slog.Duration("took", d))
		}()
		next.ServeHTTP(sw, r)
	})
}
