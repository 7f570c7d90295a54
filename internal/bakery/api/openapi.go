package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the API's OpenAPI 3 document, served at
// /api/v1/openapi.json; TestOpenAPIDescribesEveryRoute holds it and
// routes together.
//
//go:embed openapi.json
var openAPIDoc []byte

func (a *API) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDoc)
}
