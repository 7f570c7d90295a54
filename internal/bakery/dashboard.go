package bakery

import (
	"embed"
	"net/http"
)

// The dashboard is static files (dashboard/): plain HTML, CSS and
// JavaScript, no library. It asks for a token, keeps it in the tab's
// sessionStorage (never a cookie, so no other site's page can make the
// browser send it, and never a URL) and reads the API with it; its
// Content-Security-Policy allows only its own script and style and
// requests to this origin.
//
//go:embed dashboard
var dashboardFS embed.FS

// dashboardFiles are the files it serves besides its page, and their types.
var dashboardFiles = map[string]string{
	"app.js":  "text/javascript; charset=utf-8",
	"app.css": "text/css; charset=utf-8",
}

const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

func (a *API) dashboard(w http.ResponseWriter, r *http.Request) {
	a.serveDashboard(w, "index.html", "text/html; charset=utf-8")
}

func (a *API) dashboardFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	ctype, ok := dashboardFiles[name]
	if !ok {
		a.fail(w, errNoFile)
		return
	}
	a.serveDashboard(w, name, ctype)
}

func (a *API) serveDashboard(w http.ResponseWriter, name, ctype string) {
	b, err := dashboardFS.ReadFile("dashboard/" + name)
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Security-Policy", dashboardCSP)
	w.Header().Set("Content-Type", ctype)
	w.Write(b)
}
