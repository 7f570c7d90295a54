package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
)

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDoc)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	return doc
}

// The document is valid OpenAPI 3, describes every route the mux serves
// and no other, and says which need no token.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	var inDoc, served []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			inDoc = append(inDoc, method+" "+path)
			public := op.Security != nil && len(*op.Security) == 0
			i := slices.IndexFunc(routes, func(r route) bool { return r.Method == method && r.Path == path })
			if i >= 0 && routes[i].Public != public {
				t.Errorf("%s %s: public %v in the document, %v served", method, path, public, routes[i].Public)
			}
		}
	}
	for _, r := range routes {
		served = append(served, r.Method+" "+r.Path)
	}
	slices.Sort(inDoc)
	slices.Sort(served)
	if !slices.Equal(inDoc, served) {
		t.Errorf("routes served:\n%s\nroutes in the document:\n%s", strings.Join(served, "\n"), strings.Join(inDoc, "\n"))
	}
	if doc.Components.SecuritySchemes["bearerAuth"].Value.Scheme != "bearer" {
		t.Error("the document names no bearer scheme")
	}
}

// The API serves its document, without a token.
func TestOpenAPIServed(t *testing.T) {
	h := newAPI(t, nil)
	code, body := h.call("", "GET", "/api/v1/openapi.json", nil)
	if code != http.StatusOK || !bytes.Equal([]byte(body), openAPIDoc) {
		t.Errorf("GET /api/v1/openapi.json: %d %.100s", code, body)
	}
}

// Every answer the API gives (successes and refusals) has a status the
// document lists for its route and a body its schema allows.
func TestAPIAnswersMatchOpenAPI(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, ct := range []string{"text/html", "text/javascript", "text/css"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
	doc.Servers = openapi3.Servers{{URL: "http://127.0.0.1"}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	h := newAPI(t, nil)
	h.api.Images = fakeImages(nil)
	ctx := context.Background()
	_, a := h.submit(h.teamA, bakerytest.App("app-a"))
	h.s.PutLog(ctx, a.Bake.ID, strings.NewReader("line one\nline two\n"))
	// A record with a worker's verification of its image, as the API shows it.
	_, err = h.s.Update(ctx, a.Bake.ID, func(r *bakery.Record) error {
		v := bakery.Verdict{Image: "ami-00000000000000002", OK: true, Signer: "bakery", KeyID: "sha256:ab", Package: "app-a=1"}
		base := bakery.Verdict{Image: "ami-00000000000000001", Error: "image ami-00000000000000001 has no provenance"}
		r.Provenance = &bakery.Provenance{OK: true, Signer: "bakery", KeyID: "sha256:ab", Lineage: []bakery.Verdict{v, base}}
		r.Images = []bakery.Image{{ID: v.Image, Name: "img", Provenance: r.Provenance}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		token, method, path string
		body                any
	}{
		{h.teamA, "POST", "/api/v1/bakes", bakerytest.App("app-b")},
		{h.teamA, "POST", "/api/v1/bakes", bakerytest.App("app-b")},      // cached: 200
		{h.teamA, "POST", "/api/v1/bakes", bakery.Request{Package: "x"}}, // 400
		{h.teamA, "POST", "/api/v1/bakes", `{"package":"x"}`},            // 415
		{"", "POST", "/api/v1/bakes", bakerytest.App("app-c")},           // 401
		{h.teamA, "GET", "/api/v1/bakes?limit=1&state=queued", nil},      //
		{h.teamA, "GET", "/api/v1/bakes?state=baking", nil},              // 400
		{h.teamA, "GET", "/api/v1/bakes/" + a.Bake.ID, nil},              //
		{h.teamB, "GET", "/api/v1/bakes/" + a.Bake.ID, nil},              // 404
		{h.teamA, "GET", "/api/v1/bakes/" + a.Bake.ID + "/logs?offset=5", nil},
		{h.teamA, "GET", "/api/v1/bakes/" + a.Bake.ID + "/logs?offset=-1", nil}, // 400
		{h.teamA, "POST", "/api/v1/bakes/" + a.Bake.ID + "/cancel", nil},
		{h.teamA, "POST", "/api/v1/bakes/" + a.Bake.ID + "/cancel", nil}, // 400: already cancelled
		{h.admin, "GET", "/api/v1/regions", nil},
		{h.teamA, "GET", "/api/v1/regions", nil},
		{h.teamA, "GET", "/api/v1/images?region=local", nil},
		{h.teamA, "GET", "/api/v1/images", nil}, // 400
		{h.teamA, "GET", "/api/v1/whoami", nil},
		{h.admin, "GET", "/api/v1/audit?limit=5", nil},
		{h.teamA, "GET", "/api/v1/audit", nil}, // 403
		{"", "GET", "/", nil},
		{"", "GET", "/dashboard/app.js", nil},
		{"", "GET", "/dashboard/app.css", nil},
	}
	for _, c := range calls {
		code, body, hdr := h.callFull(c.token, c.method, c.path, c.body)
		req, _ := http.NewRequest(c.method, "http://127.0.0.1"+c.path, nil)
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: not in the document: %v", c.method, c.path, err)
			continue
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
			Status:                 code, Header: hdr, Body: io.NopCloser(strings.NewReader(body)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
			t.Errorf("%s %s: %d %.200s\ndoes not match the document: %v", c.method, c.path, code, body, err)
		}
	}
}

// The document's Request is bakery.Request: every field of its JSON, and
// no other (a field added to the request is documented, or this fails).
func TestOpenAPIRequestIsTheRequest(t *testing.T) {
	schema := loadOpenAPI(t).Components.Schemas["Request"].Value
	var inDoc, fields []string
	for name := range schema.Properties {
		inDoc = append(inDoc, name)
	}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[bakery.Request]()) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	slices.Sort(inDoc)
	slices.Sort(fields)
	if !slices.Equal(inDoc, fields) {
		t.Errorf("bakery.Request's JSON fields %v, the document's %v", fields, inDoc)
	}
}

// The document's Record, Provenance and Verdict are bakery's: every JSON
// field, and no other (a bake's provenance verdict is documented).
func TestOpenAPIRecordIsTheRecord(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, typ := range map[string]reflect.Type{"Record": reflect.TypeFor[bakery.Record](),
		"Provenance": reflect.TypeFor[bakery.Provenance](), "Verdict": reflect.TypeFor[bakery.Verdict]()} {
		var inDoc, fields []string
		for p := range doc.Components.Schemas[name].Value.Properties {
			inDoc = append(inDoc, p)
		}
		for _, f := range reflect.VisibleFields(typ) {
			n, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields = append(fields, n)
		}
		slices.Sort(inDoc)
		slices.Sort(fields)
		if !slices.Equal(inDoc, fields) {
			t.Errorf("bakery.%s's JSON fields %v, the document's %v", name, fields, inDoc)
		}
	}
}
