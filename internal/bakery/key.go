package bakery

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"
)

// Key identifies what a request would produce: everything that changes
// the image, the resolved base and the package's digest included (a
// file's, pinned by PinPackage at submission; a URL's, when given).
func Key(r Request, baseID string) string {
	id := struct {
		Package, PackageDigest, BaseID, Region, Environment, Name, VMType string
		Tags                                                              []string
		Arch                                                              []string `json:",omitempty"`
		KeepPartial                                                       bool     `json:",omitempty"`
	}{Package: r.Package, PackageDigest: strings.ToLower(r.PackageSHA256), BaseID: baseID, Region: r.Region,
		Environment: r.Environment, Name: r.Name, VMType: r.VMType, Arch: r.Arch, KeepPartial: r.KeepPartial}
	for k, v := range r.Tags {
		id.Tags = append(id.Tags, k+"="+v)
	}
	sort.Strings(id.Tags)
	b, _ := json.Marshal(id)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// TeamKey makes a request key a team's own: identical requests of two
// teams are two bakes (one team's cache must not tell it what another
// bakes).
func TeamKey(team, key string) string {
	if team == "" {
		return key
	}
	sum := sha256.Sum256([]byte(team + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}
