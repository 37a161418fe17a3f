// Package dsr is the domain logic of data-subject rights requests (GDPR
// Art. 12 and 15–21): the kinds of request, their deadlines and the state
// machine every request follows. It does no I/O (time zones come from the
// system or from the copy embedded by time/tzdata); the store persists requests
// (store.CreateRightsRequest, store.UpdateRightsRequest) and records each
// change in the audit log.
//
// # Deadlines
//
// Art. 12(3) asks for an answer "within one month of receipt". Periods in
// months follow Regulation (EEC, Euratom) No 1182/71, Art. 3(2)(c): the
// period ends at the end of the day, in the month after receipt, that has
// the same number as the day of receipt; when that month has no such day,
// at the end of its last day. So a request received on 15 March is due on
// 15 April, one received on 31 January on 29 February in a leap year and
// 28 February otherwise, one received on 31 March on 30 April.
//
// Days are counted in the controller's time zone (DefaultZone unless
// configured otherwise), and a deadline is the last millisecond of its day
// there (23:59:59.999 local time, the precision the store keeps): the
// receipt at 23:30 UTC on 31 January is 1 February in Paris, due 1 March.
// Regulation 1182/71 would move a deadline falling on a Saturday, Sunday or
// public holiday to the next working day; gabarit does not, so the deadline
// it shows is never later than the legal one.
//
// The period may be extended once, by one or two further months, when the
// request is complex or the requests numerous, with a recorded reason and a
// notice to the person sent before the original deadline. The extended
// deadline counts the months from the original deadline's day by the same
// rule (31 January → 29 February → 29 April for two months), which again is
// never later than counting three months from receipt.
//
// # States
//
// A request is received, then verified (the identity check by selfie
// passed), then in progress, then completed; it may be refused (with a
// reason, e.g. the identity check failed, or the request is manifestly
// unfounded or excessive, Art. 12(5)) from any open state. Completed and
// refused are final. An open request may be extended once; it then shows
// as extended until it moves on from the state it was extended in. There is
// no limit on how many requests a person makes, nor on the age of the data
// a request covers: nothing here counts either.
package dsr
