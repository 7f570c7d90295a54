// Package crashpoint kills the process at a named point, for the crash
// tests: Hit("after-manifest") is a no-op unless the binary was built with
// the build tag crashpoint and AMINATOR_CRASHPOINT names that point; then
// it writes "crashpoint NAME" to standard error and SIGKILLs its own
// process, as a power cut or the OOM killer would end it, with no deferred
// cleanup run (a job's process, its PID namespace's init, which cannot
// SIGKILL itself, exits at once with status 137 instead). Production binaries (built without the tag) carry no hook:
// Hit compiles to nothing.
//
// The points, in the order a bake meets them: after-chunks (new chunks
// synced and named, no manifest yet), after-manifest (manifest synced, the
// snapshot's row still pending), after-row (the row completed, no image
// registered), pool-refill (a pool volume made, not yet ready), gc-plan
// and gc-remove (gc planned, and gc part-way through removing), push-blocks
// and push-snapshot (a push's EBS snapshot started, and completed but not
// registered).
package crashpoint

// Env names the point to crash at.
const Env = "AMINATOR_CRASHPOINT"

// Hit crashes the process if it was built with the crashpoint tag and Env
// names point.
func Hit(point string) { hit(point) }
