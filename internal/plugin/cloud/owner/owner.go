// Package owner names the ownership tags: the tags by which aminator
// marks the volumes and snapshots it makes, and which each cloud's gc
// trusts to decide what it may remove. A resource's purpose says what it
// is for (a bake's work volume, a pool volume, a volume made for the user
// that gc leaves alone), its bake names the job that made it (whose lock
// is held while it runs) and its host the build host it was made on. On
// EC2, a copy in another region and a pushed snapshot carry the like for
// their bake or push.
//
// The bake, foundation and pool steps write these tags; the local and EC2
// clouds' gc read them. A key or value is spelled here and nowhere else,
// so a writer and the gc that trusts it cannot drift apart. The functions
// take and return map[string]string, which plugin.Tags is, so that this
// package depends on nothing.
package owner

// The keys of the ownership tags.
const (
	// Purpose says what a volume is for: one of the Purpose* values.
	Purpose = "purpose"
	// Bake is the id of the bake (or foundation) that made a volume or a
	// snapshot; a job of that id that still holds its lock is running.
	Bake = "bake"
	// Host is the build host's instance id (as plugin.Host gives it).
	Host = "host"
	// Base is the image a pool volume was made for.
	Base = "base"
)

// The tags of what an EC2 bake or push leaves outside its volume: gc
// removes what still carries them once the job they name no longer runs
// (its lock is free) on the machine they name.
const (
	// Copying is the bake's id on a copy in another region while the bake
	// makes it; CopyHost the instance the bake runs on.
	Copying  = "aminator:copying"
	CopyHost = "aminator:copy_host"
	// Push is the push's id on a pushed EBS snapshot (internal/engine/push);
	// PushHost the machine's host name (a push needs no EC2 instance).
	Push     = "aminator:push"
	PushHost = "aminator:push_host"
)

// The tags of an image's attestations (issue 21) on EC2, where the
// documents are not on the host that reads them: the snapshot's disk
// digest, which its bake read from the volume before the snapshot
// (DiskDigest: "chunkedSha256-512k:HEX"), and on the image its SBOM's and
// provenance's references (SBOM, Provenance: "s3://BUCKET/KEY#sha256=HEX",
// or "sha256:HEX" where that would be too long) or, without a bucket,
// their SHA-256 alone (SBOMSHA256, ProvenanceSHA256: HEX).
const (
	DiskDigest       = "disk_digest"
	SBOM             = "sbom"
	Provenance       = "provenance"
	SBOMSHA256       = "sbom_sha256"
	ProvenanceSHA256 = "provenance_sha256"
)

// The values of the Purpose tag.
const (
	// PurposeWork marks a bake's work volume, which gc removes once its
	// bake no longer runs.
	PurposeWork = "amination"
	// PurposePool marks a pool volume no bake has taken yet.
	PurposePool = "pool"
	// PurposeExternal marks a volume made for bakes with -V (aminate
	// volume create IMAGE, an external pool), which gc never removes.
	PurposeExternal = "external"
)

// Work are the tags of a work volume that bake makes on host (the build
// host's instance id, as plugin.Host gives it; empty off EC2): gc removes
// it once its bake no longer runs there.
func Work(bake, host string) map[string]string {
	return map[string]string{Purpose: PurposeWork, Bake: bake, Host: host}
}

// Pooled are the tags of an EC2 pool volume: its purpose, the image it
// was made for and the host that keeps it. (The local cloud's pool
// volumes carry only their purpose: they never leave their host.)
func Pooled(base, host string) map[string]string {
	return map[string]string{Purpose: PurposePool, Base: base, Host: host}
}

// IsWork reports whether tags mark a bake's work volume.
func IsWork(tags map[string]string) bool { return tags[Purpose] == PurposeWork }

// IsPooled reports whether tags mark a pool volume no bake has taken.
func IsPooled(tags map[string]string) bool { return tags[Purpose] == PurposePool }
