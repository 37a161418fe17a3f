package access

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// notDeclared stands for an organisation or field the controller left empty.
const notDeclared = "not declared"

// What became of a face's image.
const (
	statusIncluded   = "included"
	statusUnreadable = "unreadable"
	statusVideo      = "video_frame_not_included"
)

// report is report.json, and the data report.html is rendered from.
type report struct {
	RequestID    int64        `json:"request_id"`
	Received     *time.Time   `json:"received"`
	Due          *time.Time   `json:"due"`
	Generated    time.Time    `json:"generated"`
	Controller   string       `json:"controller"`
	DPO          string       `json:"dpo"`
	Authority    string       `json:"supervisory_authority"`
	Confirmation string       `json:"confirmation"`
	Faces        []faceEntry  `json:"faces"`
	Searches     []searchItem `json:"searches"`
	Art15        art15        `json:"art15"`
	Notes        []string     `json:"notes"`
}

type faceEntry struct {
	FaceID            int64      `json:"face_id"`
	ImageID           int64      `json:"image_id"`
	SourceID          int64      `json:"source_id"`
	SourceKind        string     `json:"source_kind"`
	Locator           string     `json:"locator"`
	Controller        string     `json:"controller"`
	Purpose           string     `json:"purpose"`
	LegalBasis        string     `json:"legal_basis"`
	Art9Condition     string     `json:"art9_condition"`
	RetentionMS       int64      `json:"retention_ms"`
	Retention         string     `json:"retention"`
	Collected         *time.Time `json:"collected"`
	RetentionDeadline *time.Time `json:"retention_deadline"`
	TimeCodeMS        *int64     `json:"time_code_ms,omitempty"`
	TimeCode          string     `json:"time_code,omitempty"`
	Box               box        `json:"box"`
	Similarity        *float64   `json:"similarity"`
	ImageStatus       string     `json:"image_status"`
	Image             string     `json:"image,omitempty"`
	Crop              string     `json:"face_crop,omitempty"`
	OthersBlurred     bool       `json:"other_faces_blurred"`
	Note              string     `json:"note,omitempty"`
	SearchIDs         []int64    `json:"search_ids"`
}

type box struct {
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
}

type searchItem struct {
	SearchID    int64     `json:"search_id"`
	At          time.Time `json:"at"`
	Purpose     string    `json:"purpose"`
	Case        string    `json:"case"`
	ReceivedBy  string    `json:"received_by"`
	FaceIDs     []int64   `json:"face_ids"`
	ConfirmedBy []string  `json:"confirmed_by"`
	// TwoVerifiers is whether two different verifiers confirmed the match.
	TwoVerifiers bool `json:"confirmed_by_two_verifiers"`
}

// art15 holds the information listed by Art. 15(1)(a)–(h), plus the legal
// bases (Art. 13(1)(c), 14(1)(c)) that a faithful answer also gives.
type art15 struct {
	Purposes           []string    `json:"purposes"`                  // (a)
	Categories         []string    `json:"categories"`                // (b)
	Recipients         []recipient `json:"recipients"`                // (c)
	Retention          []string    `json:"retention"`                 // (d)
	Rights             []right     `json:"rights"`                    // (e)
	Complaint          string      `json:"complaint"`                 // (f)
	Sources            []source    `json:"sources"`                   // (g)
	AutomatedDecisions string      `json:"automated_decision_making"` // (h)
	LegalBases         []string    `json:"legal_bases"`
}

type recipient struct {
	Name     string   `json:"name"`
	Searches int      `json:"searches"`
	Purposes []string `json:"purposes"`
	Cases    []string `json:"cases"`
}

type right struct {
	Right   string `json:"right"`
	Article string `json:"article"`
	Text    string `json:"text"`
}

type source struct {
	SourceID   int64    `json:"source_id"`
	Kind       string   `json:"kind"`
	Controller string   `json:"controller"`
	Locators   []string `json:"locators"`
}

func declared(s string) string {
	if strings.TrimSpace(s) == "" {
		return notDeclared
	}
	return s
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// days writes a retention period in days when it is a whole number of them.
func days(d time.Duration) string {
	switch {
	case d <= 0:
		return notDeclared
	case d%(24*time.Hour) == 0:
		if d == 24*time.Hour {
			return "1 day"
		}
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	default:
		return d.String()
	}
}

// addUnique appends s to list unless it is there already.
func addUnique(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// newReport builds the report's text from p; the image outcomes are filled in
// by Write as the images are written.
func newReport(p Package, faces []Face) *report {
	r := &report{
		RequestID:  p.RequestID,
		Received:   optTime(p.Received),
		Due:        optTime(p.Due),
		Generated:  p.Generated,
		Controller: declared(p.Controller),
		DPO:        declared(p.DPO),
		Authority:  declared(p.Authority),
		Faces:      make([]faceEntry, len(faces)),
		Searches:   []searchItem{},
	}

	searches := slices.Clone(p.Searches)
	slices.SortStableFunc(searches, func(a, b Search) int { return a.At.Compare(b.At) })
	returnedBy := map[int64][]int64{}
	var recips []recipient
	for _, s := range searches {
		item := searchItem{
			SearchID:    s.ID,
			At:          s.At,
			Purpose:     declared(s.Purpose),
			Case:        strings.TrimSpace(s.Case), // none is not an omission
			ReceivedBy:  declared(s.Actor),
			FaceIDs:     append([]int64{}, s.FaceIDs...),
			ConfirmedBy: []string{},
		}
		for _, v := range s.Confirmed {
			if strings.TrimSpace(v) != "" {
				item.ConfirmedBy = addUnique(item.ConfirmedBy, v)
			}
		}
		item.TwoVerifiers = len(item.ConfirmedBy) >= 2
		r.Searches = append(r.Searches, item)
		for _, id := range s.FaceIDs {
			if !slices.Contains(returnedBy[id], s.ID) {
				returnedBy[id] = append(returnedBy[id], s.ID)
			}
		}
		i := slices.IndexFunc(recips, func(x recipient) bool { return x.Name == item.ReceivedBy })
		if i < 0 {
			recips = append(recips, recipient{Name: item.ReceivedBy, Purposes: []string{}, Cases: []string{}})
			i = len(recips) - 1
		}
		recips[i].Searches++
		recips[i].Purposes = addUnique(recips[i].Purposes, item.Purpose)
		if item.Case != "" {
			recips[i].Cases = addUnique(recips[i].Cases, item.Case)
		}
	}

	a := &r.Art15
	a.Purposes, a.Retention, a.LegalBases = []string{}, []string{}, []string{}
	a.Sources = []source{}
	images := map[int64]bool{}
	for i, f := range faces {
		e := faceEntry{
			FaceID:            f.FaceID,
			ImageID:           f.ImageID,
			SourceID:          f.SourceID,
			SourceKind:        declared(f.SourceKind),
			Locator:           f.Locator,
			Controller:        declared(cmp.Or(f.Controller, p.Controller)),
			Purpose:           declared(f.Purpose),
			LegalBasis:        declared(f.LegalBasis),
			Art9Condition:     declared(f.Art9),
			RetentionMS:       f.Retention.Milliseconds(),
			Retention:         days(f.Retention),
			Collected:         optTime(f.Collected),
			RetentionDeadline: optTime(f.RetentionDeadline),
			Box:               box{finite(f.Box[0]), finite(f.Box[1]), finite(f.Box[2]), finite(f.Box[3])},
			SearchIDs:         append([]int64{}, returnedBy[f.FaceID]...),
		}
		if f.TimeCode != nil {
			ms := f.TimeCode.Milliseconds()
			e.TimeCodeMS = &ms
			e.TimeCode = timeCode(*f.TimeCode)
		}
		if !math.IsNaN(f.Similarity) && !math.IsInf(f.Similarity, 0) {
			s := f.Similarity
			e.Similarity = &s
		}
		r.Faces[i] = e
		images[f.ImageID] = true

		a.Purposes = addUnique(a.Purposes, e.Purpose)
		a.LegalBases = addUnique(a.LegalBases, fmt.Sprintf("%s (Art. 6(1)); Art. 9(2) condition: %s — %s", e.LegalBasis, e.Art9Condition, e.Purpose))
		a.Retention = addUnique(a.Retention, fmt.Sprintf("%s after collection (source %d, %s)", e.Retention, f.SourceID, e.SourceKind))
		j := slices.IndexFunc(a.Sources, func(s source) bool { return s.SourceID == f.SourceID })
		if j < 0 {
			a.Sources = append(a.Sources, source{SourceID: f.SourceID, Kind: e.SourceKind, Controller: e.Controller, Locators: []string{}})
			j = len(a.Sources) - 1
		}
		if f.Locator != "" {
			a.Sources[j].Locators = addUnique(a.Sources[j].Locators, f.Locator)
		}
	}
	for _, s := range r.Searches {
		a.Purposes = addUnique(a.Purposes, s.Purpose+" (search)")
	}

	if len(faces) == 0 {
		r.Confirmation = "The controller holds no face matched to you in the collections searched for this request."
	} else {
		r.Confirmation = fmt.Sprintf("The controller processes personal data about you: %d face(s) in %d image(s) or video(s), "+
			"and the %d search(es) that returned them. Each face is listed below, with a copy of the image and of the face wherever the image could be read.",
			len(faces), len(images), len(r.Searches))
	}
	a.Categories = []string{
		"Pictures of your face: the images and video frames in which your face was found, and the part of each showing your face (biometric data when used to identify you, Art. 9). A copy of every image and of every face is included.",
		"Where and when each image was collected: its locator, its source and the date it was collected.",
		"Biometric templates: numbers computed from each of your faces so that faces can be compared. They are held with each face and erased with it. They are not included in this package: a template can be turned back into a picture of a face, so it is never exported.",
		"Records of the searches that returned you: the date, the purpose, the case reference, who received the result and who confirmed the match.",
	}
	if recips == nil {
		recips = []recipient{}
	}
	a.Recipients = recips
	a.Rights = []right{
		{"Rectification", "Art. 16", "You can ask the controller to correct inaccurate data about you, for instance a face wrongly attributed to you."},
		{"Erasure", "Art. 17", "You can ask the controller to erase your data: your faces and the templates computed from them."},
		{"Restriction", "Art. 18", "You can ask the controller to restrict the processing of your data, so that it is kept but no longer searched or used, while a dispute is settled."},
		{"Objection", "Art. 21", "You can object, on grounds relating to your particular situation, to processing based on public interest or legitimate interests; the controller must then stop unless it shows compelling legitimate grounds."},
	}
	a.Complaint = "You have the right to lodge a complaint with a supervisory authority (Art. 77), in particular in the Member State of your habitual residence, place of work or of the alleged infringement. The controller's lead supervisory authority: " + r.Authority + "."
	a.AutomatedDecisions = "No decision is taken automatically, and there is no profiling (Art. 22). The system only computes how similar faces are: a match is only a candidate, and a person must review and confirm it before it is used."

	r.Notes = []string{
		"Other people's faces in the images are blurred to protect their rights (Art. 15(4)); your own faces are not.",
		"Biometric templates are not exported (see the categories of data).",
		"Faces found in videos are listed with their time code; video frames are not included.",
		"To exercise your rights, contact the controller (" + r.Controller + ") or its data protection officer (" + r.DPO + ").",
	}
	if n := p.UnreadableFaces; n > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d stored face(s) could not be compared with your photos, because their records are damaged; "+
			"some of them may be yours. Ask the controller again once they are repaired.", n))
	}
	return r
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
