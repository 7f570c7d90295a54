package api

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/aminator-go/aminator/internal/bakery"
)

// filter selects bakes of a list: by team (a team's token sees its own
// only anyway), state, region and a part of the package's name.
type filter struct {
	team, state, region, pkg string
}

var states = []string{bakery.Queued, bakery.Running, bakery.Completed, bakery.Failed, bakery.Canceled}

func filterOf(q url.Values) (filter, error) {
	f := filter{team: q.Get("team"), state: q.Get("state"), region: q.Get("region"), pkg: q.Get("package")}
	if f.state != "" && !slices.Contains(states, f.state) {
		return f, fmt.Errorf("state %q: one of %s", f.state, strings.Join(states, ", "))
	}
	return f, nil
}

func (f filter) matches(r *bakery.Record) bool {
	return (f.team == "" || r.Team == f.team) &&
		(f.state == "" || r.State == f.state) &&
		(f.region == "" || r.Request.Region == f.region) &&
		(f.pkg == "" || strings.Contains(r.Request.Package, f.pkg))
}
