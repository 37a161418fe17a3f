package access

import (
	"fmt"
	"html/template"
	"time"
)

// reportPage renders report.html: self-contained (inline style, no script,
// images by relative path inside the zip), every string escaped.
var reportPage = template.Must(template.New("report.html").Funcs(template.FuncMap{
	"when": when,
	"whenp": func(t *time.Time) string {
		if t == nil {
			return "unknown"
		}
		return when(*t)
	},
	"sim": func(s *float64) string {
		if s == nil {
			return "unknown"
		}
		return fmt.Sprintf("%.3f", *s)
	},
}).Parse(pageTemplate))

// when writes a time in its own zone, with the offset.
func when(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.Format("2006-01-02 15:04 (UTC-07:00)")
}

const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Access to your personal data — request {{.RequestID}}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { border: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.face { display: flex; gap: 1rem; border: 1px solid #ddd; padding: .8rem; margin: .8rem 0; }
.face img { max-width: 10rem; max-height: 10rem; object-fit: contain; background: #eee; }
.face dl { display: grid; grid-template-columns: 12rem 1fr; margin: 0; gap: .15rem .8rem; }
.face dt { font-weight: 600; } .face dd { margin: 0; overflow-wrap: anywhere; }
.note { background: #fff7d6; padding: .3rem .5rem; }
</style>
</head>
<body>
<h1>Access to your personal data</h1>
<p>Answer to request {{.RequestID}} (GDPR Art. 15), received {{whenp .Received}}, due {{whenp .Due}}, generated {{when .Generated}}.</p>
<p>Controller: {{.Controller}}. Data protection officer: {{.DPO}}. Supervisory authority: {{.Authority}}.</p>
<p><strong>{{.Confirmation}}</strong></p>

<h2>Your faces ({{len .Faces}})</h2>
{{range .Faces}}<div class="face">
<div>{{if .Crop}}<img src="{{.Crop}}" alt="Your face {{.FaceID}}">{{else}}<p>No picture</p>{{end}}</div>
<dl>
<dt>Face</dt><dd>{{.FaceID}} (image {{.ImageID}})</dd>
<dt>Image</dt><dd>{{if .Image}}<a href="{{.Image}}">{{.Image}}</a>{{if .OthersBlurred}} — other people's faces blurred{{end}}{{else}}not included{{end}}</dd>
{{if .Note}}<dt>Note</dt><dd class="note">{{.Note}}</dd>{{end}}
<dt>Source</dt><dd>source {{.SourceID}} ({{.SourceKind}})</dd>
<dt>Locator</dt><dd>{{if .Locator}}{{.Locator}}{{else}}not recorded{{end}}</dd>
{{if .TimeCode}}<dt>Time in the video</dt><dd>{{.TimeCode}}</dd>{{end}}
<dt>Controller</dt><dd>{{.Controller}}</dd>
<dt>Purpose</dt><dd>{{.Purpose}}</dd>
<dt>Legal basis</dt><dd>{{.LegalBasis}}; Art. 9(2) condition: {{.Art9Condition}}</dd>
<dt>Collected</dt><dd>{{whenp .Collected}}</dd>
<dt>Retention</dt><dd>{{.Retention}}{{if .RetentionMS}} after collection{{end}}; to be deleted by {{whenp .RetentionDeadline}}</dd>
<dt>Similarity to you</dt><dd>{{sim .Similarity}}</dd>
<dt>Returned by searches</dt><dd>{{range $i, $id := .SearchIDs}}{{if $i}}, {{end}}{{$id}}{{else}}none{{end}}</dd>
</dl>
</div>
{{else}}<p>No face.</p>
{{end}}
<h2>Searches that returned you ({{len .Searches}})</h2>
{{if .Searches}}<table>
<tr><th>Search</th><th>Date</th><th>Purpose</th><th>Case</th><th>Result received by</th><th>Confirmed by</th><th>Your faces</th></tr>
{{range .Searches}}<tr><td>{{.SearchID}}</td><td>{{when .At}}</td><td>{{.Purpose}}</td><td>{{if .Case}}{{.Case}}{{else}}none{{end}}</td><td>{{.ReceivedBy}}</td>
<td>{{range $i, $v := .ConfirmedBy}}{{if $i}}, {{end}}{{$v}}{{else}}nobody{{end}}{{if .TwoVerifiers}} (two verifiers){{end}}</td>
<td>{{range $i, $id := .FaceIDs}}{{if $i}}, {{end}}{{$id}}{{end}}</td></tr>
{{end}}</table>
{{else}}<p>No search returned you.</p>
{{end}}
<h2>Information under Art. 15(1)</h2>
{{with .Art15}}<dl>
<dt>(a) Purposes of the processing</dt>
<dd><ul>{{range .Purposes}}<li>{{.}}</li>{{else}}<li>none</li>{{end}}</ul></dd>
<dt>Legal bases</dt>
<dd><ul>{{range .LegalBases}}<li>{{.}}</li>{{else}}<li>none</li>{{end}}</ul></dd>
<dt>(b) Categories of personal data</dt>
<dd><ul>{{range .Categories}}<li>{{.}}</li>{{end}}</ul></dd>
<dt>(c) Recipients</dt>
<dd>{{if .Recipients}}<ul>{{range .Recipients}}<li>{{.Name}}: {{.Searches}} search(es); purposes: {{range $i, $v := .Purposes}}{{if $i}}, {{end}}{{$v}}{{end}}; cases: {{range $i, $v := .Cases}}{{if $i}}, {{end}}{{$v}}{{else}}none{{end}}</li>{{end}}</ul>{{else}}Nobody has received your data through a search.{{end}}</dd>
<dt>(d) Retention</dt>
<dd><ul>{{range .Retention}}<li>{{.}}</li>{{else}}<li>none</li>{{end}}</ul></dd>
<dt>(e) Your rights to rectification, erasure, restriction and objection</dt>
<dd><ul>{{range .Rights}}<li><strong>{{.Right}}</strong> ({{.Article}}): {{.Text}}</li>{{end}}</ul></dd>
<dt>(f) Complaint</dt>
<dd>{{.Complaint}}</dd>
<dt>(g) Source of the data</dt>
<dd>{{if .Sources}}<ul>{{range .Sources}}<li>Source {{.SourceID}} ({{.Kind}}), controller {{.Controller}}{{if .Locators}}: {{range $i, $v := .Locators}}{{if $i}}; {{end}}{{$v}}{{end}}{{end}}</li>{{end}}</ul>{{else}}none{{end}}</dd>
<dt>(h) Automated decision-making</dt>
<dd>{{.AutomatedDecisions}}</dd>
</dl>{{end}}
<h2>Notes</h2>
<ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>
</body>
</html>
`
