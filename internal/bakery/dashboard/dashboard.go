// Package dashboard is the bakery's dashboard: static files (plain HTML,
// CSS and JavaScript, no library) that the API serves. It asks for a
// token, keeps it in the tab's sessionStorage (never a cookie, so no
// other site's page can make the browser send it, and never a URL) and
// reads the API with it; its Content-Security-Policy allows only its own
// script and style and requests to this origin.
package dashboard

import (
	"embed"
	"fmt"
)

//go:embed index.html app.js app.css
var files embed.FS

// assets are the files served beside the page (under /dashboard/), and
// their content types.
var assets = map[string]string{
	"app.js":  "text/javascript; charset=utf-8",
	"app.css": "text/css; charset=utf-8",
}

// CSP is the Content-Security-Policy every file is served with.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// Page is the dashboard's page (served at /) and its content type.
func Page() (body []byte, contentType string, err error) {
	return read("index.html", "text/html; charset=utf-8")
}

// Asset is a file served beside the page and its content type; ok is
// false for a name the dashboard does not serve that way.
func Asset(name string) (body []byte, contentType string, ok bool, err error) {
	ctype, ok := assets[name]
	if !ok {
		return nil, "", false, nil
	}
	body, contentType, err = read(name, ctype)
	return body, contentType, true, err
}

func read(name, ctype string) ([]byte, string, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, "", fmt.Errorf("dashboard file %s: %w", name, err)
	}
	return b, ctype, nil
}
