package api

import (
	"net/http"

	"github.com/aminator-go/aminator/internal/bakery/dashboard"
)

func (a *API) dashboard(w http.ResponseWriter, r *http.Request) {
	b, ctype, err := dashboard.Page()
	a.serveDashboard(w, b, ctype, err)
}

func (a *API) dashboardFile(w http.ResponseWriter, r *http.Request) {
	b, ctype, ok, err := dashboard.Asset(r.PathValue("file"))
	if !ok {
		a.fail(w, errNoFile)
		return
	}
	a.serveDashboard(w, b, ctype, err)
}

func (a *API) serveDashboard(w http.ResponseWriter, b []byte, ctype string, err error) {
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Security-Policy", dashboard.CSP)
	w.Header().Set("Content-Type", ctype)
	w.Write(b)
}
