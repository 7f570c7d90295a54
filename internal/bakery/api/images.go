package api

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/plugin"
)

// imagesPerFamily is how many of a family's newest images are shown.
const imagesPerFamily = 10

// lineageStep is one ancestor of an image: its foundation, its base.
type lineageStep struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Role   string `json:"role,omitempty"`
	Family string `json:"family,omitempty"`
	// Gone: the ancestor is no longer among the region's images.
	Gone bool `json:"gone,omitempty"`
}

// imageView is an image as the dashboard shows it.
type imageView struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Role     string        `json:"role,omitempty"`
	Channel  string        `json:"channel,omitempty"`
	Created  time.Time     `json:"created"`
	BakeryID string        `json:"bakery_id,omitempty"`
	Lineage  []lineageStep `json:"lineage"`
}

// familyView is a family's channels (label -> image id) and its newest
// images.
type familyView struct {
	Family   string            `json:"family"`
	Role     string            `json:"role,omitempty"`
	Channels map[string]string `json:"channels"`
	Images   []imageView       `json:"images"`
}

// imagesResponse is GET /api/v1/images.
type imagesResponse struct {
	Region   string       `json:"region"`
	Families []familyView `json:"families"`
}

func (a *API) images(w http.ResponseWriter, r *http.Request) {
	region := r.URL.Query().Get("region")
	if !bakery.ValidRegion(region) {
		a.fail(w, badRequest{fmt.Errorf("region %q: give ?region=, lower-case letters, digits and -", region)})
		return
	}
	if a.Images == nil {
		a.fail(w, errors.New("this bakery does not list images"))
		return
	}
	ims, err := a.Images(r.Context(), region)
	if err != nil {
		a.fail(w, badRequest{fmt.Errorf("images of region %s: %w", region, err)})
		return
	}
	seen := a.imageScope(r, ims)
	writeJSON(w, http.StatusOK, imagesResponse{Region: region, Families: families(ims, seen)})
}

// imageScope says which images an identity may see: foundations and
// bases (every team bakes on them), and the app images of its own
// team's bakes (an admin: all).
func (a *API) imageScope(r *http.Request, ims []*plugin.Image) func(*plugin.Image) bool {
	who := identity(r)
	teams := map[string]string{}
	return func(im *plugin.Image) bool {
		role := im.Tags[channels.TagRole]
		if who.Admin || role == channels.RoleFoundation || role == channels.RoleBase {
			return true
		}
		id := im.Tags["bakery_id"]
		if id == "" {
			return false
		}
		team, ok := teams[id]
		if !ok {
			if rec, _, err := a.Store.Get(r.Context(), id); err == nil {
				team = rec.Team
			}
			teams[id] = team
		}
		return team != "" && team == who.Team
	}
}

// families groups the images one may see by family, newest first, with
// each one's lineage named from the same list.
func families(ims []*plugin.Image, sees func(*plugin.Image) bool) []familyView {
	byID := map[string]*plugin.Image{}
	for _, im := range ims {
		byID[im.ID] = im
	}
	sort.SliceStable(ims, func(i, j int) bool { return ims[i].CreatedAt.After(ims[j].CreatedAt) })
	by := map[string]*familyView{}
	var order []string
	for _, im := range ims {
		fam := im.Tags[channels.TagFamily]
		if fam == "" || !sees(im) {
			continue
		}
		f := by[fam]
		if f == nil {
			f = &familyView{Family: fam, Role: im.Tags[channels.TagRole], Channels: map[string]string{}, Images: []imageView{}}
			by[fam], order = f, append(order, fam)
		}
		if ch := im.Tags[channels.TagChannel]; ch != "" && f.Channels[ch] == "" {
			f.Channels[ch] = im.ID
		}
		if len(f.Images) < imagesPerFamily {
			f.Images = append(f.Images, viewOf(im, byID))
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return roleRank(by[order[i]].Role) < roleRank(by[order[j]].Role) })
	out := make([]familyView, 0, len(order))
	for _, fam := range order {
		out = append(out, *by[fam])
	}
	return out
}

func viewOf(im *plugin.Image, byID map[string]*plugin.Image) imageView {
	v := imageView{ID: im.ID, Name: im.Name, Role: im.Tags[channels.TagRole], Channel: im.Tags[channels.TagChannel],
		Created: im.CreatedAt, BakeryID: im.Tags["bakery_id"], Lineage: []lineageStep{}}
	for _, id := range channels.Lineage(im) {
		a, ok := byID[id]
		if !ok {
			v.Lineage = append(v.Lineage, lineageStep{ID: id, Gone: true})
			continue
		}
		v.Lineage = append(v.Lineage, lineageStep{ID: id, Name: a.Name, Role: a.Tags[channels.TagRole], Family: a.Tags[channels.TagFamily]})
	}
	return v
}

// roleRank orders families foundation, base, app.
func roleRank(role string) int {
	switch role {
	case channels.RoleFoundation:
		return 0
	case channels.RoleBase:
		return 1
	case channels.RoleApp:
		return 2
	}
	return 3
}
