package imds

import (
	"net/http"
	"regexp"
	"strings"
)

// versions is what IMDS answers to GET /: the API versions, oldest first.
// cloud-init asks 2009-04-04 and, when present, 2016-09-02, 2018-09-24 or
// 2021-03-23.
const versions = "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n2008-02-01\n2008-09-01\n" +
	"2009-04-04\n2011-01-01\n2011-05-01\n2012-01-12\n2014-02-25\n2014-11-05\n2015-10-20\n2016-04-19\n" +
	"2016-06-30\n2016-09-02\n2018-03-28\n2018-08-17\n2018-09-24\n2019-10-01\n2020-10-27\n2021-01-03\n" +
	"2021-03-23\n2021-07-15\n2022-09-24\nlatest"

// versionPrefix matches an API version at the start of a path; the mock
// serves /latest/ only.
var versionPrefix = regexp.MustCompile(`^/(?:1\.0|\d{4}-\d{2}-\d{2})(/|$)`)

const keysPath = "/latest/meta-data/public-keys"

// front answers what the mock answers unlike IMDS (see the package doc)
// and hands the rest to it, as /latest/ and without a trailing slash (which
// the mock's own server strips too). keyName is empty when there is no key.
func front(mock http.Handler, keyName string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := versionPrefix.ReplaceAllString(r.URL.Path, "/latest$1")
		if path != "/" {
			path = strings.TrimSuffix(path, "/")
		}
		switch {
		case path == "/":
			text(w, versions)
		case keyName != "" && path == keysPath:
			text(w, "0="+keyName)
		case keyName != "" && path == keysPath+"/0":
			text(w, "openssh-key")
		default:
			r = r.Clone(r.Context())
			r.URL.Path, r.URL.RawPath = path, ""
			mock.ServeHTTP(w, r)
		}
	})
}

func text(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(s))
}
