package server

import (
	"context"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/dsr"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/keyring"
	"gabarit/internal/store"
)

// --- the public portal: where a request stands, and checks of selfies ---

const (
	// statusCodeLen is the length of a status code in base32 characters
	// (5 bits each: 50 bits of the MAC, against guessing at 60 tries an
	// hour).
	statusCodeLen = 10
	// minSelfieQuality is the face quality (face.Face.Quality, in [0,1])
	// under which the portal warns that a selfie, though usable, is not
	// reliable.
	minSelfieQuality = 0.3
)

// statusEncoding writes status codes: upper-case base32 without padding.
var statusEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// errNoPortalMatch answers every status look-up that fails: a wrong code,
// a malformed or unknown reference. It never says which, so that nothing
// tells whether a reference exists.
var errNoPortalMatch = newError(http.StatusNotFound, "not_found", "no request matches this reference and code")

// reference names request id for the person: R-<id>.
func reference(id int64) string { return "R-" + strconv.FormatInt(id, 10) }

// parseReference reads a reference as the person types it: "R-12", "r-12"
// or "12", spaces around it trimmed.
func parseReference(s string) (int64, bool) {
	s = strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "R-")
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// statusCode returns the status code of request id, ungrouped: the first
// statusCodeLen characters of the base32 of the MAC of its reference under
// keyring.PurposePortalStatus. Nothing is stored: the code is the same for
// as long as the master key is.
func (s *Server) statusCode(id int64) (string, error) {
	mac, err := s.cfg.Data.Keys.MAC(keyring.PurposePortalStatus, []byte(reference(id)))
	if err != nil {
		return "", fmt.Errorf("status code: %w", err)
	}
	return statusEncoding.EncodeToString(mac)[:statusCodeLen], nil
}

// groupCode writes a status code for people: XXXXX-XXXXX.
func groupCode(code string) string {
	if len(code) != statusCodeLen {
		return code
	}
	return code[:statusCodeLen/2] + "-" + code[statusCodeLen/2:]
}

// normaliseCode reads a status code as the person types it: any case, with
// or without the dash, spaces ignored.
func normaliseCode(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, strings.ToUpper(strings.TrimSpace(s)))
}

// requestByCode returns the request ref names when code is its status
// code, and errNoPortalMatch otherwise. The code is checked before the
// store is read, so that an unknown reference and a wrong code take the
// same path.
func (s *Server) requestByCode(ctx context.Context, ref, code string) (dsr.Request, error) {
	id, ok := parseReference(ref)
	if !ok {
		return dsr.Request{}, errNoPortalMatch
	}
	want, err := s.statusCode(id)
	if err != nil {
		return dsr.Request{}, err
	}
	if subtle.ConstantTimeCompare([]byte(normaliseCode(code)), []byte(want)) != 1 {
		return dsr.Request{}, errNoPortalMatch
	}
	req, err := s.cfg.Data.DB.RightsRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return dsr.Request{}, errNoPortalMatch
	}
	return req, err
}

// publicState is what the portal says of a request's state: verified is
// shown as in-progress (both are "being answered"), and a refusal's reason
// goes to the contact, not here.
func publicState(st dsr.State) string {
	if st == dsr.Verified {
		return string(dsr.InProgress)
	}
	return string(st)
}

// publicStateWords name the public states in plain words.
var publicStateWords = map[string]string{
	string(dsr.Received):   "received, not yet answered",
	string(dsr.InProgress): "being answered",
	string(dsr.Extended):   "deadline extended",
	string(dsr.Completed):  "completed",
	string(dsr.Refused):    "refused",
}

// requestLocation is the zone of a request's deadlines.
func requestLocation(req dsr.Request) *time.Location {
	loc, err := dsr.Location(req.Zone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// portalDue writes a deadline for people, in the request's zone.
func portalDue(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Monday 2 January 2006") + " (" + loc.String() + ")"
}

// tooManyRequests is what a client refused by a limit of the portal
// made too many of.
const tooManyRequests = "too many requests from your address"

// limitedPortalRequest registers a request from the portal (see
// registerPortal) within the portal's limits, per client address: those
// registered, and those refused (a bad photo, no face, a bad form) apart,
// so that refused ones do not use up the requests a person may register.
// Each request takes a place in both until its outcome is known, so that
// concurrent ones cannot pass the limits; a failure of the server counts
// in neither.
func (s *Server) limitedPortalRequest(w http.ResponseWriter, r *http.Request) (dsr.Request, error) {
	key := s.clientKey(r)
	t, wait := takeAll(bucket{s.portal, key}, bucket{s.portalFailed, key})
	if wait > 0 {
		return dsr.Request{}, rateLimited(w, tooManyRequests, wait)
	}
	registered, refused := t[0], t[1]
	req, err := s.registerPortal(r, "portal", portalKinds)
	switch {
	case err == nil:
		refused.cancel()
	case classify(err, "").Status < http.StatusInternalServerError:
		registered.cancel()
	default:
		t.cancel()
	}
	return req, err
}

// portalStatusBody is the status page: the form, and what a look-up found.
type portalStatusBody struct {
	Ref, Code string // as typed, shown again
	Found     *portalStatusView
	Error     string
}

// portalStatusView is all the status page shows of a request.
type portalStatusView struct {
	Reference string
	State     string // the public state, for the page's data attribute
	Words     string // the state in plain words
	Due       string
}

func (s *Server) portalStatusPage(w http.ResponseWriter, r *http.Request, status int, b portalStatusBody) error {
	return s.render(w, status, "portal_status", s.newPage(r, nil, "Your request", b))
}

// pagePortalStatus shows where a request stands to whoever has its
// reference and status code: its state and due date, nothing else.
func (s *Server) pagePortalStatus(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := r.URL.Query()
	b := portalStatusBody{Ref: strings.TrimSpace(q.Get("ref")), Code: strings.TrimSpace(q.Get("code"))}
	if !q.Has("ref") && !q.Has("code") {
		return s.portalStatusPage(w, r, http.StatusOK, b)
	}
	if b.Ref == "" || b.Code == "" {
		b.Error = "Give both your reference and your status code."
		return s.portalStatusPage(w, r, http.StatusBadRequest, b)
	}
	if _, wait := s.portalStatus.take(s.clientKey(r)); wait > 0 {
		b.Error = portalErrorMessage(rateLimited(w, tooManyRequests, wait))
		return s.portalStatusPage(w, r, http.StatusTooManyRequests, b)
	}
	req, err := s.requestByCode(r.Context(), b.Ref, b.Code)
	if errors.Is(err, errNoPortalMatch) {
		b.Error = "No request matches this reference and code."
		return s.portalStatusPage(w, r, http.StatusNotFound, b)
	}
	if err != nil {
		return err
	}
	st := publicState(req.State)
	b.Found = &portalStatusView{Reference: reference(req.ID), State: st, Words: publicStateWords[st],
		Due: portalDue(req.Deadline(), requestLocation(req))}
	return s.portalStatusPage(w, r, http.StatusOK, b)
}

// portalStatusJSON is the API's answer of where a request stands.
type portalStatusJSON struct {
	Reference string    `json:"reference"`
	State     string    `json:"state"`
	Due       time.Time `json:"due"` // in the request's zone
}

func (s *Server) apiPortalStatus(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if _, wait := s.portalStatus.take(s.clientKey(r)); wait > 0 {
		return rateLimited(w, tooManyRequests, wait)
	}
	req, err := s.requestByCode(r.Context(), r.PathValue("ref"), r.URL.Query().Get("code"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, portalStatusJSON{Reference: reference(req.ID), State: publicState(req.State),
		Due: req.Deadline().In(requestLocation(req))})
	return nil
}

// identityExamples are the ways the controller may confirm a requester's
// identity, as the portal tells them: the public wording of the methods
// the DPO records (app.IdentityMethods) that have one. A records.json that
// cannot be read is logged, and the portal then names no example.
func (s *Server) identityExamples() []string {
	ms, err := app.IdentityMethods(s.cfg.Data.Dir)
	if err != nil {
		s.log.Error("portal: identity methods", "err", err)
		return nil
	}
	var out []string
	for _, m := range ms {
		if m.Public != "" {
			out = append(out, m.Public)
		}
	}
	return out
}

// faceCheckJSON is the answer of a selfie's check.
type faceCheckJSON struct {
	Usable  bool    `json:"usable"`
	Faces   int     `json:"faces"`
	Quality float64 `json:"quality"` // of the largest face; 0 without one
	Message string  `json:"message"` // why it is unusable or unreliable; empty when it is fine
}

// apiFaceCheck tells a person, before they send a request, whether a
// selfie will do: it is analysed as rights.Engine.Register analyses it (its
// largest face), and nothing is stored, logged or audited.
func (s *Server) apiFaceCheck(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if _, wait := s.faceCheck.take(s.clientKey(r)); wait > 0 {
		return rateLimited(w, tooManyRequests, wait)
	}
	ps, err := photos(r, "selfie", 1)
	if errors.Is(err, imageproc.ErrUnsupportedFormat) {
		j, _ := checkSelfie(face.Analysis{}, err)
		writeJSON(w, http.StatusOK, j)
		return nil
	}
	if err != nil {
		return err
	}
	var an face.Analysis
	err = s.analyse(r.Context(), func(ctx context.Context) error {
		var err error
		an, err = s.rights.An.Analyze(ctx, ps[0])
		return err
	})
	out, err := checkSelfie(an, err)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// selfiesCheckJSON is the answer of a check of a request's selfies
// together.
type selfiesCheckJSON struct {
	Photos []faceCheckJSON `json:"photos"` // in the order sent
	// OnePerson says whether every two usable photos show one person
	// clearly enough for the request not to be refused; null with fewer
	// than two usable photos.
	OnePerson *bool  `json:"one_person"`
	Message   string `json:"message,omitempty"` // why the photos would be refused together
}

// apiSelfiesCheck checks a request's selfies before it is sent: each as
// apiFaceCheck does, and, as rights.Engine.Find will, whether they show one
// and the same person (a request whose selfies do not is refused). It says
// nothing about the store; nothing is stored, logged or audited.
func (s *Server) apiSelfiesCheck(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if _, wait := s.faceCheck.take(s.clientKey(r)); wait > 0 {
		return rateLimited(w, tooManyRequests, wait)
	}
	ps, err := photos(r, "selfie", maxSelfies)
	if err != nil && !errors.Is(err, imageproc.ErrUnsupportedFormat) {
		return err
	}
	if errors.Is(err, imageproc.ErrUnsupportedFormat) {
		// One of them is not an image: check them one by one to say which.
		ps = nil
		for _, fh := range r.MultipartForm.File["selfie"] {
			b, err := readPart(fh)
			if err != nil {
				return err
			}
			ps = append(ps, b)
		}
	}
	out := selfiesCheckJSON{Photos: make([]faceCheckJSON, len(ps))}
	var templates []face.Embedding
	for i, b := range ps {
		var an face.Analysis
		err := s.analyse(r.Context(), func(ctx context.Context) error {
			var err error
			an, err = s.rights.An.Analyze(ctx, b)
			return err
		})
		if out.Photos[i], err = checkSelfie(an, err); err != nil {
			return err
		}
		if j := face.Largest(an.Faces); out.Photos[i].Usable && j >= 0 {
			templates = append(templates, an.Faces[j].Embedding)
		}
	}
	if len(templates) >= 2 {
		one := true
		for i := range templates {
			for j := i + 1; j < len(templates); j++ {
				if c, err := templates[i].Cosine(templates[j]); err != nil || c < s.rights.SelfieMatch {
					one = false
				}
			}
		}
		out.OnePerson = &one
		if !one {
			out.Message = "These photos may not all show the same person clearly enough: a request with them would be refused. " +
				"Choose recent photos of your face alone, facing the camera, or send only the clearest one."
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// checkSelfie judges the analysis of a selfie (or the error analysing it).
func checkSelfie(an face.Analysis, err error) (faceCheckJSON, error) {
	switch {
	case errors.Is(err, face.ErrNoFace):
		return faceCheckJSON{Message: portalErrorMessage(errNoFace)}, nil
	case errors.Is(err, imageproc.ErrUnsupportedFormat), errors.Is(err, imageproc.ErrCorrupt), errors.Is(err, imageproc.ErrTooLarge):
		// Which problem it is, in the decoder's plain words: not a photo,
		// damaged, or too large (with the numbers).
		return faceCheckJSON{Message: unusableFile(imageproc.Message(err))}, nil
	case err != nil:
		return faceCheckJSON{}, err
	}
	j := face.Largest(an.Faces)
	if j < 0 {
		return faceCheckJSON{Message: portalErrorMessage(errNoFace)}, nil
	}
	q := an.Faces[j].Quality
	out := faceCheckJSON{Usable: true, Faces: len(an.Faces), Quality: math.Round(q*1e3) / 1e3}
	if q < minSelfieQuality {
		out.Message = "This photo is usable but not sharp or frontal enough to be reliable; a clearer photo helps."
	}
	return out, nil
}
