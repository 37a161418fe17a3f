package dsr

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func paris(t testing.TB) *time.Location {
	t.Helper()
	loc, err := Location("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// endOf returns 23:59:59.999 on y-m-d in loc.
func endOf(y int, m time.Month, d int, loc *time.Location) time.Time {
	return time.Date(y, m, d, 23, 59, 59, int(999*time.Millisecond), loc)
}

func TestDue(t *testing.T) {
	t.Parallel()
	loc := paris(t)
	tests := []struct {
		name     string
		received time.Time
		want     time.Time
	}{
		{"mid month", time.Date(2025, 3, 15, 10, 0, 0, 0, loc), endOf(2025, 4, 15, loc)},
		{"31 Jan, leap year", time.Date(2024, 1, 31, 9, 0, 0, 0, loc), endOf(2024, 2, 29, loc)},
		{"31 Jan, common year", time.Date(2025, 1, 31, 9, 0, 0, 0, loc), endOf(2025, 2, 28, loc)},
		{"30 Jan, common year", time.Date(2025, 1, 30, 9, 0, 0, 0, loc), endOf(2025, 2, 28, loc)},
		{"29 Jan, leap year", time.Date(2024, 1, 29, 9, 0, 0, 0, loc), endOf(2024, 2, 29, loc)},
		{"29 Feb", time.Date(2024, 2, 29, 9, 0, 0, 0, loc), endOf(2024, 3, 29, loc)},
		{"28 Feb, common year", time.Date(2025, 2, 28, 9, 0, 0, 0, loc), endOf(2025, 3, 28, loc)},
		{"31 Mar", time.Date(2024, 3, 31, 9, 0, 0, 0, loc), endOf(2024, 4, 30, loc)},
		{"30 Apr", time.Date(2025, 4, 30, 9, 0, 0, 0, loc), endOf(2025, 5, 30, loc)},
		{"31 May", time.Date(2025, 5, 31, 9, 0, 0, 0, loc), endOf(2025, 6, 30, loc)},
		{"31 Aug", time.Date(2025, 8, 31, 9, 0, 0, 0, loc), endOf(2025, 9, 30, loc)},
		{"31 Dec, across the year", time.Date(2024, 12, 31, 9, 0, 0, 0, loc), endOf(2025, 1, 31, loc)},
		{"first instant of a day", time.Date(2025, 6, 1, 0, 0, 0, 0, loc), endOf(2025, 7, 1, loc)},
		{"last instant of a day", endOf(2025, 6, 1, loc), endOf(2025, 7, 1, loc)},
		// 31 January 23:30 UTC is already 1 February in Paris.
		{"day counted in the controller's zone", time.Date(2025, 1, 31, 23, 30, 0, 0, time.UTC), endOf(2025, 3, 1, loc)},
		{"day counted in the controller's zone, same day", time.Date(2025, 1, 31, 22, 30, 0, 0, time.UTC), endOf(2025, 2, 28, loc)},
		// Summer time starts on 30 March 2025 (a 23-hour day) and ends on
		// 26 October 2025 (a 25-hour day) in Paris.
		{"received on the spring DST day", time.Date(2025, 3, 30, 12, 0, 0, 0, loc), endOf(2025, 4, 30, loc)},
		{"due on the spring DST day", time.Date(2022, 2, 27, 12, 0, 0, 0, loc), endOf(2022, 3, 27, loc)}, // 27 Mar 2022: 23 hours
		{"late evening of the last day of February", time.Date(2025, 2, 28, 23, 59, 0, 0, loc), endOf(2025, 3, 28, loc)},
		{"due on the autumn DST day", time.Date(2025, 9, 26, 8, 0, 0, 0, loc), endOf(2025, 10, 26, loc)},
		{"received on the autumn DST day, repeated hour", time.Date(2025, 10, 26, 0, 30, 0, 0, time.UTC), endOf(2025, 11, 26, loc)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Due(tt.received, loc)
			if !got.Equal(tt.want) {
				t.Errorf("Due(%v) = %v, want %v", tt.received, got.In(loc), tt.want)
			}
			if got.In(loc).Hour() != 23 || got.In(loc).Minute() != 59 {
				t.Errorf("Due(%v) = %v, not the end of a local day", tt.received, got.In(loc))
			}
			if !got.After(tt.received) {
				t.Errorf("Due(%v) = %v, not after receipt", tt.received, got)
			}
		})
	}
}

func TestDueDSTDayLengths(t *testing.T) {
	t.Parallel()
	loc := paris(t)
	// The deadline is the last millisecond of the local day, whatever its
	// length: the next millisecond is midnight local time.
	for _, due := range []time.Time{Due(time.Date(2025, 2, 26, 9, 0, 0, 0, loc), loc), // 26 Mar: before the switch
		Due(time.Date(2025, 2, 28, 9, 0, 0, 0, loc), loc), // 28 Mar
		Due(time.Date(2025, 9, 26, 9, 0, 0, 0, loc), loc), // 26 Oct: a 25-hour day
		Due(time.Date(2022, 2, 27, 9, 0, 0, 0, loc), loc), // 27 Mar 2022: a 23-hour day
		Due(time.Date(2024, 1, 31, 9, 0, 0, 0, loc), loc), // 29 Feb 2024
	} {
		after := due.Add(time.Millisecond).In(loc)
		if after.Hour() != 0 || after.Minute() != 0 || after.Second() != 0 || after.Nanosecond() != 0 {
			t.Errorf("due %v: next instant %v is not local midnight", due.In(loc), after)
		}
	}
	// On 30 March 2025 02:00–03:00 does not exist in Paris; received at
	// 01:30 UTC (03:30 local) the request is due on 30 April.
	got := Due(time.Date(2025, 3, 30, 1, 30, 0, 0, time.UTC), loc)
	if want := endOf(2025, 4, 30, loc); !got.Equal(want) {
		t.Errorf("Due = %v, want %v", got.In(loc), want)
	}
	// In UTC the end of the day is 23:59:59.999Z; in Paris it is an hour or
	// two earlier in UTC.
	if got, want := Due(time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC), nil), time.Date(2025, 2, 10, 23, 59, 59, 999e6, time.UTC); !got.Equal(want) {
		t.Errorf("Due(nil loc) = %v, want %v", got, want)
	}
	if got, want := Due(time.Date(2025, 1, 10, 12, 0, 0, 0, loc), loc).UTC(), time.Date(2025, 2, 10, 22, 59, 59, 999e6, time.UTC); !got.Equal(want) {
		t.Errorf("Due(Paris, winter) = %v UTC, want %v", got, want)
	}
	if got, want := Due(time.Date(2025, 6, 10, 12, 0, 0, 0, loc), loc).UTC(), time.Date(2025, 7, 10, 21, 59, 59, 999e6, time.UTC); !got.Equal(want) {
		t.Errorf("Due(Paris, summer) = %v UTC, want %v", got, want)
	}
}

func TestExtendDeadline(t *testing.T) {
	t.Parallel()
	loc := paris(t)
	tests := []struct {
		name    string
		due     time.Time
		months  int
		want    time.Time
		wantErr error
	}{
		{"one month", endOf(2025, 4, 15, loc), 1, endOf(2025, 5, 15, loc), nil},
		{"two months", endOf(2025, 4, 15, loc), 2, endOf(2025, 6, 15, loc), nil},
		{"from 29 Feb, counted from the due day", endOf(2024, 2, 29, loc), 2, endOf(2024, 4, 29, loc), nil},
		{"31 Mar + 2 → 31 May", endOf(2025, 3, 31, loc), 2, endOf(2025, 5, 31, loc), nil},
		{"31 Mar + 1 → 30 Apr", endOf(2025, 3, 31, loc), 1, endOf(2025, 4, 30, loc), nil},
		{"31 Dec + 2 → 28 Feb", endOf(2024, 12, 31, loc), 2, endOf(2025, 2, 28, loc), nil},
		{"30 Dec 2023 + 2 → 29 Feb 2024", endOf(2023, 12, 30, loc), 2, endOf(2024, 2, 29, loc), nil},
		{"across the autumn DST change", endOf(2025, 9, 26, loc), 1, endOf(2025, 10, 26, loc), nil},
		{"zero months", endOf(2025, 4, 15, loc), 0, time.Time{}, ErrInvalid},
		{"three months", endOf(2025, 4, 15, loc), 3, time.Time{}, ErrInvalid},
		{"negative", endOf(2025, 4, 15, loc), -1, time.Time{}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Extend(tt.due, tt.months, loc)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Extend err = %v, want %v", err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("Extend(%v, %d) = %v, want %v", tt.due.In(loc), tt.months, got.In(loc), tt.want)
			}
		})
	}
	// The deadline as the store returns it (UTC) extends the same way.
	if got, _ := Extend(endOf(2024, 2, 29, loc).UTC(), 1, loc); !got.Equal(endOf(2024, 3, 29, loc)) {
		t.Errorf("Extend(UTC due) = %v, want 29 March end of day in Paris", got.In(loc))
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, k := range Kinds() {
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	for _, s := range []string{"", "Access", "delete", "portability"} {
		if _, err := ParseKind(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseKind(%q) err = %v, want ErrInvalid", s, err)
		}
	}
	for _, st := range States() {
		if got, err := ParseState(string(st)); err != nil || got != st {
			t.Errorf("ParseState(%q) = %q, %v", st, got, err)
		}
	}
	if _, err := ParseState("in_progress"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseState(in_progress) err = %v, want ErrInvalid", err)
	}
}

func TestTransitionTable(t *testing.T) {
	t.Parallel()
	// The whole table: every pair not listed is illegal.
	allowed := map[[2]State]bool{
		{Received, Verified}:    true,
		{Received, Refused}:     true, // identity check failed
		{Received, Extended}:    true,
		{Verified, InProgress}:  true,
		{Verified, Refused}:     true,
		{Verified, Extended}:    true,
		{InProgress, Completed}: true,
		{InProgress, Refused}:   true,
		{InProgress, Extended}:  true,
		{Extended, Verified}:    true,
		{Extended, InProgress}:  true,
		{Extended, Completed}:   true,
		{Extended, Refused}:     true,
	}
	for _, from := range States() {
		for _, to := range States() {
			err := Transition(from, to)
			if allowed[[2]State{from, to}] {
				if err != nil {
					t.Errorf("Transition(%s, %s) = %v, want nil", from, to, err)
				}
			} else if !errors.Is(err, ErrIllegalTransition) {
				t.Errorf("Transition(%s, %s) = %v, want ErrIllegalTransition", from, to, err)
			}
		}
	}
	for _, pair := range [][2]State{{"", Verified}, {Received, "done"}} {
		if err := Transition(pair[0], pair[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("Transition(%q, %q) = %v, want ErrInvalid", pair[0], pair[1], err)
		}
	}
}

// received is the receipt time of the requests under test; due 15 April.
var received = time.Date(2025, 3, 15, 10, 0, 0, 0, time.UTC)

func newRequest(t testing.TB) Request {
	t.Helper()
	r, err := NewRequest(Access, "person@example.org", received, "")
	if err != nil {
		t.Fatal(err)
	}
	r.ID = 7
	return r
}

func TestNewRequest(t *testing.T) {
	t.Parallel()
	r := newRequest(t)
	want := Request{ID: 7, Kind: Access, State: Received, Contact: "person@example.org", Zone: DefaultZone,
		Received: received, Due: endOf(2025, 4, 15, paris(t))}
	if !sameFields(r, want) {
		t.Errorf("NewRequest = %+v, want %+v", r, want)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	tests := []struct {
		name     string
		kind     Kind
		contact  string
		received time.Time
		zone     string
	}{
		{"unknown kind", "portability", "x", received, ""},
		{"no contact", Access, " ", received, ""},
		{"no time", Access, "x", time.Time{}, ""},
		{"unknown zone", Access, "x", received, "Mars/Olympus"},
		{"host zone", Access, "x", received, "Local"},
	}
	for _, tt := range tests {
		if _, err := NewRequest(tt.kind, tt.contact, tt.received, tt.zone); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: NewRequest err = %v, want ErrInvalid", tt.name, err)
		}
	}
	other, err := NewRequest(Erasure, "x", received, "America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	if !other.Due.Equal(endOf(2025, 4, 15, ny)) {
		t.Errorf("due in New York = %v", other.Due.In(ny))
	}
}

// step is one call on a request in a scenario.
type step struct {
	at      time.Time
	to      State // Extended means Extend
	months  int
	reason  string
	wantErr error
}

func TestRequestLifecycle(t *testing.T) {
	t.Parallel()
	day := func(d int) time.Time { return received.Add(time.Duration(d) * 24 * time.Hour) }
	due := endOf(2025, 4, 15, paris(t))
	tests := []struct {
		name  string
		steps []step
		want  State
	}{
		{"complete", []step{{at: day(1), to: Verified}, {at: day(2), to: InProgress}, {at: day(3), to: Completed}}, Completed},
		{"refuse unverified", []step{{at: day(1), to: Refused, reason: "identity not confirmed"}}, Refused},
		{"refuse in progress", []step{{at: day(1), to: Verified}, {at: day(2), to: InProgress}, {at: day(3), to: Refused, reason: "manifestly excessive"}}, Refused},
		{"refusal needs a reason", []step{{at: day(1), to: Refused, wantErr: ErrInvalid}}, Received},
		{"blank refusal reason", []step{{at: day(1), to: Refused, reason: "  ", wantErr: ErrInvalid}}, Received},
		{"only refusal takes a reason", []step{{at: day(1), to: Verified, reason: "ok", wantErr: ErrInvalid}}, Received},
		{"skip verification", []step{{at: day(1), to: InProgress, wantErr: ErrIllegalTransition}}, Received},
		{"complete unverified", []step{{at: day(1), to: Completed, wantErr: ErrIllegalTransition}}, Received},
		{"back to received", []step{{at: day(1), to: Verified}, {at: day(2), to: Received, wantErr: ErrIllegalTransition}}, Verified},
		{"nothing after completion", []step{{at: day(1), to: Verified}, {at: day(2), to: InProgress}, {at: day(3), to: Completed},
			{at: day(4), to: Refused, reason: "x", wantErr: ErrIllegalTransition}}, Completed},
		{"nothing after refusal", []step{{at: day(1), to: Refused, reason: "x"}, {at: day(2), to: Verified, wantErr: ErrIllegalTransition}}, Refused},
		{"advance to extended", []step{{at: day(1), to: Extended, months: 0, wantErr: ErrIllegalTransition}}, Received},
		{"before receipt", []step{{at: day(-1), to: Verified, wantErr: ErrInvalid}}, Received},

		{"extend when received, then verify", []step{{at: day(5), to: Extended, months: 2, reason: "complex"}, {at: day(6), to: Verified}, {at: day(7), to: InProgress}, {at: day(8), to: Completed}}, Completed},
		{"extended received cannot complete", []step{{at: day(5), to: Extended, months: 1, reason: "complex"}, {at: day(6), to: Completed, wantErr: ErrIllegalTransition}}, Extended},
		{"extended received cannot skip verification", []step{{at: day(5), to: Extended, months: 1, reason: "complex"}, {at: day(6), to: InProgress, wantErr: ErrIllegalTransition}}, Extended},
		{"extended received can be refused", []step{{at: day(5), to: Extended, months: 1, reason: "complex"}, {at: day(6), to: Refused, reason: "identity not confirmed"}}, Refused},
		{"extend in progress, then complete", []step{{at: day(1), to: Verified}, {at: day(2), to: InProgress}, {at: day(3), to: Extended, months: 1, reason: "numerous requests"}, {at: day(40), to: Completed}}, Completed},
		{"extended in progress cannot go back", []step{{at: day(1), to: Verified}, {at: day(2), to: InProgress}, {at: day(3), to: Extended, months: 1, reason: "numerous"}, {at: day(4), to: Verified, wantErr: ErrIllegalTransition}}, Extended},
		{"extend verified, then progress", []step{{at: day(1), to: Verified}, {at: day(3), to: Extended, months: 2, reason: "complex"}, {at: day(4), to: InProgress}}, InProgress},
		{"extend twice", []step{{at: day(1), to: Extended, months: 1, reason: "complex"}, {at: day(2), to: Extended, months: 1, reason: "again", wantErr: ErrAlreadyExtended}}, Extended},
		{"extend twice, after moving on", []step{{at: day(1), to: Extended, months: 1, reason: "complex"}, {at: day(2), to: Verified}, {at: day(3), to: Extended, months: 1, reason: "again", wantErr: ErrAlreadyExtended}}, Verified},
		{"extend on the due date's last millisecond", []step{{at: due, to: Extended, months: 1, reason: "complex"}}, Extended},
		{"extend after the due date", []step{{at: due.Add(time.Millisecond), to: Extended, months: 1, reason: "complex", wantErr: ErrTooLate}}, Received},
		{"extend by 0 months", []step{{at: day(1), to: Extended, months: 0, reason: "complex", wantErr: ErrInvalid}}, Received},
		{"extend by 3 months", []step{{at: day(1), to: Extended, months: 3, reason: "complex", wantErr: ErrInvalid}}, Received},
		{"extend without a reason", []step{{at: day(1), to: Extended, months: 1, wantErr: ErrInvalid}}, Received},
		{"extend a completed request", []step{{at: day(1), to: Verified}, {at: day(2), to: InProgress}, {at: day(3), to: Completed},
			{at: day(4), to: Extended, months: 1, reason: "x", wantErr: ErrIllegalTransition}}, Completed},
		{"extend a refused request", []step{{at: day(1), to: Refused, reason: "x"}, {at: day(2), to: Extended, months: 1, reason: "x", wantErr: ErrIllegalTransition}}, Refused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRequest(t)
			for i, s := range tt.steps {
				before := r
				var err error
				if s.to == Extended && (s.months != 0 || s.reason != "") {
					err = r.Extend(s.at, s.months, s.reason)
				} else {
					err = r.Advance(s.at, s.to, s.reason)
				}
				if !errors.Is(err, s.wantErr) || (err == nil) != (s.wantErr == nil) {
					t.Fatalf("step %d (→ %s): err = %v, want %v", i, s.to, err, s.wantErr)
				}
				if err != nil {
					if !sameFields(r, before) {
						t.Fatalf("step %d: failed call changed the request:\n%+v\nwas %+v", i, r, before)
					}
					continue
				}
				if err := r.Validate(); err != nil {
					t.Fatalf("step %d: Validate: %v", i, err)
				}
				if err := CheckUpdate(before, r); err != nil {
					t.Fatalf("step %d: CheckUpdate: %v", i, err)
				}
			}
			if r.State != tt.want {
				t.Errorf("state = %s, want %s", r.State, tt.want)
			}
			if r.State.Final() != !r.Closed.IsZero() {
				t.Errorf("state %s, closed %v", r.State, r.Closed)
			}
		})
	}
}

func TestExtendRecords(t *testing.T) {
	t.Parallel()
	loc := paris(t)
	r, err := NewRequest(Erasure, "x", time.Date(2024, 1, 31, 12, 0, 0, 0, loc), "")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Due.Equal(endOf(2024, 2, 29, loc)) {
		t.Fatalf("due %v", r.Due.In(loc))
	}
	notice := time.Date(2024, 2, 20, 9, 0, 0, 0, loc)
	if err := r.Extend(notice, 2, "many faces in many sources"); err != nil {
		t.Fatal(err)
	}
	if !r.Extended || r.ExtendedFrom != Received || r.State != Extended || !r.NoticeSentAt.Equal(notice) ||
		r.ExtendReason != "many faces in many sources" || !r.ExtendedDue.Equal(endOf(2024, 4, 29, loc)) {
		t.Errorf("extended request = %+v", r)
	}
	if !r.Deadline().Equal(r.ExtendedDue) {
		t.Errorf("Deadline = %v, want the extended due date", r.Deadline())
	}
	if r.Overdue(endOf(2024, 3, 15, loc)) {
		t.Error("overdue before the extended deadline")
	}
	if !r.Overdue(endOf(2024, 4, 29, loc).Add(time.Millisecond)) {
		t.Error("not overdue after the extended deadline")
	}
}

func TestOverdueAndLate(t *testing.T) {
	t.Parallel()
	r := newRequest(t)
	if r.Overdue(r.Due) {
		t.Error("overdue at the deadline's last millisecond")
	}
	if !r.Overdue(r.Due.Add(time.Millisecond)) {
		t.Error("not overdue after the deadline")
	}
	for _, s := range []State{Verified, InProgress} {
		if err := r.Advance(received.Add(time.Hour), s, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Advance(r.Due.Add(time.Hour), Completed, ""); err != nil {
		t.Fatalf("completing late must be possible: %v", err)
	}
	if r.Overdue(r.Due.Add(48 * time.Hour)) {
		t.Error("a closed request is never overdue")
	}
	if !r.Late() {
		t.Error("closed after the deadline but not Late")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	loc := paris(t)
	extended := newRequest(t)
	if err := extended.Extend(received.Add(time.Hour), 1, "complex"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		base    Request
		mod     func(*Request)
		wantErr error
	}{
		{"valid", newRequest(t), func(*Request) {}, nil},
		{"valid extended", extended, func(*Request) {}, nil},
		{"unknown kind", newRequest(t), func(r *Request) { r.Kind = "x" }, ErrInvalid},
		{"unknown state", newRequest(t), func(r *Request) { r.State = "x" }, ErrInvalid},
		{"no contact", newRequest(t), func(r *Request) { r.Contact = "" }, ErrInvalid},
		{"no zone", newRequest(t), func(r *Request) { r.Zone = "" }, ErrInvalid},
		{"wrong due", newRequest(t), func(r *Request) { r.Due = r.Due.Add(24 * time.Hour) }, ErrInvalid},
		{"due in another zone", newRequest(t), func(r *Request) { r.Zone = "UTC" }, ErrInvalid},
		{"closed but open", newRequest(t), func(r *Request) { r.Closed = received }, ErrInvalid},
		{"completed without time", newRequest(t), func(r *Request) { r.State = Completed }, ErrInvalid},
		{"refused without reason", newRequest(t), func(r *Request) { r.State, r.Closed = Refused, received }, ErrInvalid},
		{"reason while open", newRequest(t), func(r *Request) { r.Reason = "x" }, ErrInvalid},
		{"extended state without flag", newRequest(t), func(r *Request) { r.State = Extended }, ErrInvalid},
		{"stray extension reason", newRequest(t), func(r *Request) { r.ExtendReason = "x" }, ErrInvalid},
		{"extension without reason", extended, func(r *Request) { r.ExtendReason = "" }, ErrInvalid},
		{"extension by 3 months", extended, func(r *Request) { r.ExtendedDue, _ = Extend(r.ExtendedDue, 2, loc) }, ErrInvalid},
		{"notice after due", extended, func(r *Request) { r.NoticeSentAt = r.Due.Add(time.Millisecond) }, ErrTooLate},
		{"extended from a final state", extended, func(r *Request) { r.ExtendedFrom = Completed }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.base
			tt.mod(&r)
			err := r.Validate()
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("Validate err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestCheckUpdate(t *testing.T) {
	t.Parallel()
	at := received.Add(time.Hour)
	open := newRequest(t)
	advanced := func(r Request, to State, reason string) Request {
		t.Helper()
		if err := r.Advance(at, to, reason); err != nil {
			t.Fatal(err)
		}
		return r
	}
	verified := advanced(open, Verified, "")
	inProgress := advanced(verified, InProgress, "")
	completed := advanced(inProgress, Completed, "")
	extended := verified
	if err := extended.Extend(at, 2, "complex"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		old     Request
		mod     func(*Request)
		wantErr error
	}{
		{"no change", open, func(*Request) {}, nil},
		{"matches while open", verified, func(r *Request) { r.Matches = []int64{3, 9} }, nil},
		{"result while open", inProgress, func(r *Request) { r.Result = json.RawMessage(`{"faces":2}`) }, nil},
		{"one step", open, func(r *Request) { *r = advanced(*r, Verified, "") }, nil},
		{"close with result", inProgress, func(r *Request) {
			*r = advanced(*r, Completed, "")
			r.Result = json.RawMessage(`{"package_sha256":"ab"}`)
		}, nil},
		{"extend", verified, func(r *Request) { *r = extended }, nil},
		{"continue after extension", extended, func(r *Request) { *r = advanced(*r, InProgress, "") }, nil},
		{"two steps at once", open, func(r *Request) { *r = advanced(advanced(*r, Verified, ""), InProgress, "") }, ErrIllegalTransition},
		{"state set by hand", open, func(r *Request) { r.State = InProgress }, ErrIllegalTransition},
		{"completed set by hand", open, func(r *Request) { r.State, r.Closed = Completed, at }, ErrIllegalTransition},
		{"extend and move on at once", verified, func(r *Request) { *r = advanced(extended, InProgress, "") }, ErrIllegalTransition},
		{"un-extend", extended, func(r *Request) { *r = verified }, ErrInvalid},
		{"extension reason rewritten", extended, func(r *Request) { r.ExtendReason = "other" }, ErrInvalid},
		{"late extension", verified, func(r *Request) {
			*r = extended
			r.NoticeSentAt = r.Due
			r.NoticeSentAt = r.NoticeSentAt.Add(time.Millisecond)
		}, ErrTooLate},
		{"contact changed", open, func(r *Request) { r.Contact = "other@example.org" }, ErrInvalid},
		{"kind changed", open, func(r *Request) { r.Kind = Erasure }, ErrInvalid},
		{"receipt moved", open, func(r *Request) {
			r.Received = r.Received.Add(24 * time.Hour)
			r.Due = Due(r.Received, paris(t))
		}, ErrInvalid},
		{"closed request changed", completed, func(r *Request) { r.Result = json.RawMessage(`{}`) }, ErrIllegalTransition},
		{"closed request reopened", completed, func(r *Request) { r.State, r.Closed = InProgress, time.Time{} }, ErrIllegalTransition},
		{"closed request unchanged", completed, func(*Request) {}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := tt.old
			next.Matches = append([]int64(nil), tt.old.Matches...)
			tt.mod(&next)
			err := CheckUpdate(tt.old, next)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("CheckUpdate err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
