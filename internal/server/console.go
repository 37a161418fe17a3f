package server

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
)

//go:embed web/static web/templates
var webFS embed.FS

// pageRoutes are the console and the portal.
func (s *Server) pageRoutes() []*route {
	return nil
}

// staticHandler serves the embedded CSS, scripts and images.
func staticHandler() http.Handler {
	sub, err := fs.Sub(webFS, "web/static")
	if err != nil {
		panic(err)
	}
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// errorPage answers a failed page request.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, e *apiError) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(e.Status)
	_ = errorTmpl.Execute(w, e)
}

var errorTmpl = template.Must(template.New("error").Parse(`<!doctype html><title>gabarit: {{.Code}}</title><p>{{.Message}}</p>`))
