package dsr

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // the controller's zone must load even where the host has no zoneinfo
)

// Sentinel errors returned (wrapped) by this package; test them with
// errors.Is.
var (
	// ErrInvalid is returned for an unknown kind, state or zone, a missing
	// contact or reason, or an extension of other than 1 or 2 months.
	ErrInvalid = errors.New("invalid rights request")
	// ErrIllegalTransition is returned for a state change the state machine
	// does not allow, including any change to a closed request.
	ErrIllegalTransition = errors.New("illegal rights request transition")
	// ErrTooLate is returned for an extension asked after the original
	// deadline: the person must be told before the first month ends.
	ErrTooLate = errors.New("extension after the original deadline")
	// ErrAlreadyExtended is returned for a second extension.
	ErrAlreadyExtended = errors.New("rights request already extended")
)

// DefaultZone is the time zone deadlines are counted in when the controller
// configures none.
const DefaultZone = "Europe/Paris"

// Kind is the right a request exercises.
type Kind string

// The kinds of request.
const (
	Access      Kind = "access"      // Art. 15: a copy of the data and how it is processed
	Erasure     Kind = "erasure"     // Art. 17: delete the person's faces everywhere
	Objection   Kind = "objection"   // Art. 21: stop processing, and never collect the person again
	Restriction Kind = "restriction" // Art. 18: hide the person from every search until lifted
)

// Kinds returns every kind, in a fixed order.
func Kinds() []Kind { return []Kind{Access, Erasure, Objection, Restriction} }

// Valid reports whether k is one of the kinds.
func (k Kind) Valid() bool { return slices.Contains(Kinds(), k) }

// ParseKind returns the kind named s, or an error wrapping ErrInvalid.
func ParseKind(s string) (Kind, error) {
	if k := Kind(s); k.Valid() {
		return k, nil
	}
	return "", fmt.Errorf("unknown kind %q (want access, erasure, objection or restriction): %w", s, ErrInvalid)
}

// State is where a request stands.
type State string

// The states of a request. Completed and Refused are final.
const (
	Received   State = "received"    // registered, deadline running
	Verified   State = "verified"    // the requester's identity is established
	InProgress State = "in-progress" // being answered
	Extended   State = "extended"    // deadline extended; moves on from the state it was extended in
	Completed  State = "completed"   // answered
	Refused    State = "refused"     // refused, with a reason
)

// States returns every state, in a fixed order.
func States() []State { return []State{Received, Verified, InProgress, Extended, Completed, Refused} }

// Valid reports whether s is one of the states.
func (s State) Valid() bool { return slices.Contains(States(), s) }

// Final reports whether s closes the request.
func (s State) Final() bool { return s == Completed || s == Refused }

// ParseState returns the state named s, or an error wrapping ErrInvalid.
func ParseState(s string) (State, error) {
	if st := State(s); st.Valid() {
		return st, nil
	}
	return "", fmt.Errorf("unknown state %q: %w", s, ErrInvalid)
}

// successors lists the states a request may go to from s. From Extended it
// lists every state a request may continue to; Request.Advance narrows that
// to the successors of the state the request was extended in.
func successors(s State) []State {
	switch s {
	case Received:
		return []State{Verified, Refused, Extended}
	case Verified:
		return []State{InProgress, Refused, Extended}
	case InProgress:
		return []State{Completed, Refused, Extended}
	case Extended:
		return []State{Verified, InProgress, Completed, Refused}
	}
	return nil // Completed and Refused are final
}

// Transition reports whether a request may go from state from to state to,
// returning nil when it may and an error wrapping ErrIllegalTransition (or
// ErrInvalid for an unknown state) otherwise. Nothing leaves Completed or
// Refused, and no state goes to itself.
func Transition(from, to State) error {
	if !from.Valid() || !to.Valid() {
		return fmt.Errorf("transition %q → %q: %w", from, to, ErrInvalid)
	}
	if !slices.Contains(successors(from), to) {
		return fmt.Errorf("%s → %s: %w", from, to, ErrIllegalTransition)
	}
	return nil
}

// Location returns the time zone named zone (an IANA name such as
// "Europe/Paris"; empty means DefaultZone). "Local" is refused: a deadline
// must not depend on the host it is computed on.
func Location(zone string) (*time.Location, error) {
	if zone == "" {
		zone = DefaultZone
	}
	if zone == "Local" {
		return nil, fmt.Errorf("time zone %q: name an IANA zone: %w", zone, ErrInvalid)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w: %w", zone, ErrInvalid, err)
	}
	return loc, nil
}

// Due returns the deadline of a request received at received: the end
// (23:59:59.999) of the day, in loc, one calendar month after the day of
// receipt, or of that month's last day when it is shorter (see the package
// documentation). A nil loc means UTC.
func Due(received time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	y, m, d := received.In(loc).Date()
	return endOfDay(addMonths(y, m, d, 1), loc)
}

// Extend returns the deadline due pushed back by months (1 or 2) calendar
// months, counted from due's day in loc by the rule of Due. A nil loc means
// UTC. Other month counts fail with ErrInvalid.
func Extend(due time.Time, months int, loc *time.Location) (time.Time, error) {
	if months < 1 || months > 2 {
		return time.Time{}, fmt.Errorf("extend by %d months (want 1 or 2): %w", months, ErrInvalid)
	}
	if loc == nil {
		loc = time.UTC
	}
	y, m, d := due.In(loc).Date()
	return endOfDay(addMonths(y, m, d, months), loc), nil
}

// date is a calendar day.
type date struct {
	y int
	m time.Month
	d int
}

// addMonths returns the day n months after y-m-d, or the last day of that
// month when it is shorter.
func addMonths(y int, m time.Month, d, n int) date {
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return date{first.Year(), first.Month(), min(d, last)}
}

// endOfDay returns the last millisecond of day in loc. Computing it as the
// next day's start minus 1ms keeps it right on days of 23 or 25 hours.
func endOfDay(day date, loc *time.Location) time.Time {
	return time.Date(day.y, day.m, day.d+1, 0, 0, 0, 0, loc).Add(-time.Millisecond)
}

// Request is one rights request. Contact is where the answer goes; it is
// personal data, never logged nor written to the audit log. Matches and
// Result hold face ids and a summary of what was done, never templates.
type Request struct {
	ID       int64
	Kind     Kind
	State    State
	Contact  string    // where the answer goes (address, e-mail); stored as given
	Zone     string    // IANA zone the deadlines are counted in
	Received time.Time // when the request reached the controller
	Due      time.Time // Due(Received, Zone): the original deadline

	Extended     bool      // the deadline was extended (at most once)
	ExtendedFrom State     // the state the request was extended in
	ExtendedDue  time.Time // the extended deadline
	ExtendReason string    // why it was extended
	NoticeSentAt time.Time // when the person was told of the extension

	Reason  string          // why it was refused; empty otherwise
	Closed  time.Time       // when it was completed or refused; zero while open
	Matches []int64         // the ids of the stored faces matching the requester's selfies
	Result  json.RawMessage // what was done (JSON), e.g. erased face count or package hash
}

// Current is the state r is in for processing: while extended, the state
// it was extended in.
func (r Request) Current() State {
	if r.State == Extended {
		return r.ExtendedFrom
	}
	return r.State
}

// Acting reports whether r was left in progress by a run that stopped: it
// can only be finished, on the set that run froze.
func (r Request) Acting() bool { return r.Current() == InProgress }

// NewRequest returns a request of kind k received at received, in state
// Received, with its deadline counted in zone (empty means DefaultZone).
// An unknown kind or zone, or a blank contact, fails with ErrInvalid.
func NewRequest(k Kind, contact string, received time.Time, zone string) (Request, error) {
	if !k.Valid() {
		return Request{}, fmt.Errorf("new request: unknown kind %q: %w", k, ErrInvalid)
	}
	if strings.TrimSpace(contact) == "" {
		return Request{}, fmt.Errorf("new request: contact required: %w", ErrInvalid)
	}
	if received.IsZero() {
		return Request{}, fmt.Errorf("new request: time of receipt required: %w", ErrInvalid)
	}
	if zone == "" {
		zone = DefaultZone
	}
	loc, err := Location(zone)
	if err != nil {
		return Request{}, fmt.Errorf("new request: %w", err)
	}
	return Request{Kind: k, State: Received, Contact: contact, Zone: zone,
		Received: received, Due: Due(received, loc)}, nil
}

// Deadline returns the deadline in force: the extended one when the request
// was extended, the original one otherwise.
func (r *Request) Deadline() time.Time {
	if r.Extended {
		return r.ExtendedDue
	}
	return r.Due
}

// Overdue reports whether r is still open after its deadline at now.
func (r *Request) Overdue(now time.Time) bool {
	return !r.State.Final() && now.After(r.Deadline())
}

// Late reports whether r was closed after its deadline.
func (r *Request) Late() bool {
	return r.State.Final() && r.Closed.After(r.Deadline())
}

// step returns the state r moves on from: the state it was extended in
// while it shows as Extended, its state otherwise.
func (r *Request) step() State {
	if r.State == Extended {
		return r.ExtendedFrom
	}
	return r.State
}

// Advance moves r to state to at now. The move must be legal (Transition)
// from r's state, or, while r shows as Extended, from the state it was
// extended in; Extended itself is reached only through Extend. Refused
// needs a reason, and only Refused takes one. Completed and Refused record
// now as the closing time. It fails with ErrIllegalTransition or ErrInvalid
// and then leaves r unchanged.
func (r *Request) Advance(now time.Time, to State, reason string) error {
	if to == Extended {
		return fmt.Errorf("advance request %d to %s: use Extend: %w", r.ID, to, ErrIllegalTransition)
	}
	if err := Transition(r.step(), to); err != nil {
		return fmt.Errorf("advance request %d: %w", r.ID, err)
	}
	switch {
	case to == Refused && strings.TrimSpace(reason) == "":
		return fmt.Errorf("refuse request %d: reason required: %w", r.ID, ErrInvalid)
	case to != Refused && reason != "":
		return fmt.Errorf("advance request %d to %s: only a refusal takes a reason: %w", r.ID, to, ErrInvalid)
	case now.Before(r.Received):
		return fmt.Errorf("advance request %d: %v is before its receipt: %w", r.ID, now, ErrInvalid)
	}
	r.State = to
	r.Reason = reason
	if to.Final() {
		r.Closed = now
	}
	return nil
}

// Extend pushes r's deadline back by months (1 or 2) from its original
// deadline, for reason, and records now as the time the person was told:
// send the notice to r.Contact first, then call Extend with the time it
// went. r must be open and not yet extended (ErrAlreadyExtended), and now
// must not be after the original deadline (ErrTooLate). r then shows as
// Extended. On error r is unchanged.
func (r *Request) Extend(now time.Time, months int, reason string) error {
	switch {
	case r.State.Final() || r.State == Extended:
		if r.Extended {
			return fmt.Errorf("extend request %d: %w", r.ID, ErrAlreadyExtended)
		}
		return fmt.Errorf("extend request %d: %s → %s: %w", r.ID, r.State, Extended, ErrIllegalTransition)
	case r.Extended:
		return fmt.Errorf("extend request %d: %w", r.ID, ErrAlreadyExtended)
	case strings.TrimSpace(reason) == "":
		return fmt.Errorf("extend request %d: reason required: %w", r.ID, ErrInvalid)
	case now.Before(r.Received):
		return fmt.Errorf("extend request %d: %v is before its receipt: %w", r.ID, now, ErrInvalid)
	case now.After(r.Due):
		return fmt.Errorf("extend request %d: due %v: %w", r.ID, r.Due, ErrTooLate)
	}
	if err := Transition(r.State, Extended); err != nil {
		return fmt.Errorf("extend request %d: %w", r.ID, err)
	}
	loc, err := Location(r.Zone)
	if err != nil {
		return fmt.Errorf("extend request %d: %w", r.ID, err)
	}
	due, err := Extend(r.Due, months, loc)
	if err != nil {
		return fmt.Errorf("extend request %d: %w", r.ID, err)
	}
	r.ExtendedFrom = r.State
	r.State = Extended
	r.Extended = true
	r.ExtendedDue = due
	r.ExtendReason = reason
	r.NoticeSentAt = now
	return nil
}

// Validate checks that r is a request this package could have produced:
// known kind and state, a contact, a zone, Due computed from Received, a
// closing time exactly when final, a reason when refused, and extension
// fields that are all set (and consistent) or all zero. It fails with
// ErrInvalid.
func (r *Request) Validate() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("request %d: %s: %w", r.ID, fmt.Sprintf(format, args...), ErrInvalid)
	}
	if !r.Kind.Valid() {
		return fail("unknown kind %q", r.Kind)
	}
	if !r.State.Valid() {
		return fail("unknown state %q", r.State)
	}
	if strings.TrimSpace(r.Contact) == "" {
		return fail("contact required")
	}
	if r.Zone == "" {
		return fail("zone required")
	}
	loc, err := Location(r.Zone)
	if err != nil {
		return fmt.Errorf("request %d: %w", r.ID, err)
	}
	if r.Received.IsZero() {
		return fail("time of receipt required")
	}
	if want := Due(r.Received, loc); !r.Due.Equal(want) {
		return fail("due %v, want %v", r.Due, want)
	}
	if r.State.Final() == r.Closed.IsZero() {
		return fail("state %s with closing time %v", r.State, r.Closed)
	}
	if r.State.Final() && r.Closed.Before(r.Received) {
		return fail("closed before its receipt")
	}
	if r.State == Refused && strings.TrimSpace(r.Reason) == "" {
		return fail("refusal without a reason")
	}
	if r.State != Refused && r.Reason != "" {
		return fail("reason on a request not refused")
	}
	if !r.Extended {
		if r.State == Extended || r.ExtendedFrom != "" || !r.ExtendedDue.IsZero() || r.ExtendReason != "" || !r.NoticeSentAt.IsZero() {
			return fail("extension fields on a request not extended")
		}
		return nil
	}
	switch {
	case r.ExtendedFrom != Received && r.ExtendedFrom != Verified && r.ExtendedFrom != InProgress:
		return fail("extended from %q", r.ExtendedFrom)
	case strings.TrimSpace(r.ExtendReason) == "":
		return fail("extension without a reason")
	case r.NoticeSentAt.IsZero() || r.NoticeSentAt.Before(r.Received):
		return fail("extension notice time %v", r.NoticeSentAt)
	case r.NoticeSentAt.After(r.Due):
		return fmt.Errorf("request %d: notice sent %v: %w", r.ID, r.NoticeSentAt, ErrTooLate)
	}
	one, _ := Extend(r.Due, 1, loc) // 1 and 2 months cannot fail
	two, _ := Extend(r.Due, 2, loc)
	if !r.ExtendedDue.Equal(one) && !r.ExtendedDue.Equal(two) {
		return fail("extended due %v, want %v or %v", r.ExtendedDue, one, two)
	}
	return nil
}

// CheckUpdate checks that next is old after at most one Advance or one
// Extend, with Matches and Result free to change while old is open: the
// store runs it on every update, whoever changed the fields. Identity
// fields (ID, Kind, Contact, Zone, Received, Due) never change, and a
// closed request does not change at all. It fails with ErrInvalid,
// ErrIllegalTransition, ErrTooLate or ErrAlreadyExtended.
func CheckUpdate(old, next Request) error {
	if err := next.Validate(); err != nil {
		return err
	}
	switch {
	case old.ID != next.ID || old.Kind != next.Kind || old.Contact != next.Contact || old.Zone != next.Zone ||
		!old.Received.Equal(next.Received) || !old.Due.Equal(next.Due):
		return fmt.Errorf("request %d: identity fields changed: %w", old.ID, ErrInvalid)
	case old.Extended && !next.Extended:
		return fmt.Errorf("request %d: an extension cannot be withdrawn: %w", old.ID, ErrInvalid)
	case old.State.Final():
		if !sameFields(old, next) {
			return fmt.Errorf("request %d is %s: %w", old.ID, old.State, ErrIllegalTransition)
		}
		return nil
	}
	// Replay the one operation that could lead from old to next, and
	// compare what it produced with next (Matches and Result aside).
	replay := old
	switch {
	case next.Extended && !old.Extended:
		if next.State != Extended {
			return fmt.Errorf("request %d: extended and moved on in one update: %w", old.ID, ErrIllegalTransition)
		}
		loc, err := Location(next.Zone)
		if err != nil {
			return err
		}
		months := 2
		if one, _ := Extend(next.Due, 1, loc); next.ExtendedDue.Equal(one) { // 1 month cannot fail
			months = 1
		}
		if err := replay.Extend(next.NoticeSentAt, months, next.ExtendReason); err != nil {
			return err
		}
	case next.State != old.State:
		now := next.Closed // the time Advance records; an open state records none
		if now.IsZero() {
			now = old.Received
		}
		if err := replay.Advance(now, next.State, next.Reason); err != nil {
			return err
		}
	}
	replay.Matches, replay.Result = next.Matches, next.Result
	if !sameFields(replay, next) {
		return fmt.Errorf("request %d: fields changed outside a transition: %w", old.ID, ErrInvalid)
	}
	return nil
}

// sameFields reports whether a and b hold the same request (times compared
// as instants, Result as JSON text).
func sameFields(a, b Request) bool {
	return a.ID == b.ID && a.Kind == b.Kind && a.State == b.State && a.Contact == b.Contact && a.Zone == b.Zone &&
		a.Received.Equal(b.Received) && a.Due.Equal(b.Due) &&
		a.Extended == b.Extended && a.ExtendedFrom == b.ExtendedFrom && a.ExtendedDue.Equal(b.ExtendedDue) &&
		a.ExtendReason == b.ExtendReason && a.NoticeSentAt.Equal(b.NoticeSentAt) &&
		a.Reason == b.Reason && a.Closed.Equal(b.Closed) &&
		slices.Equal(a.Matches, b.Matches) && string(a.Result) == string(b.Result)
}
