// Package bakery is the core of the bakery, which serves bake requests
// for many teams in several regions, as Netflix's Bakery and Spinnaker's
// Rosco do: what a team asks for (Request), what identifies it for
// collapsing identical requests (Key), what the bakery knows of a bake
// (Record), what a worker hands the child process that runs one
// (QueuedBake), and the checks the API and the workers share (Policy).
// Its parts are subpackages:
//
//   - api: the HTTP API (routes, OpenAPI document, guard, tokens on
//     requests, TLS, limits) that takes requests and serves the dashboard;
//   - dashboard: the dashboard's static files;
//   - store: the shared state on NATS JetStream — the work queue per
//     region, the records, logs, tokens, live workers and audit log;
//   - worker: takes a region's bakes off the queue and runs each in a
//     child aminate process;
//   - broker: reaching NATS, and the embedded NATS server and cluster.
//
// Identical requests are served from what is running or done (the key
// includes the resolved base image, so a new base release does trigger a
// new bake — Rosco's known weakness), concurrent identical requests
// collapse into one bake, and a bake can be cancelled. Workers check each
// request again and run its bake in a child aminate process, handing it
// the request typed (a QueuedBake, as JSON on its standard input); the
// child bakes through the same service functions as `aminate bake`, so a
// bake gets the CLI's namespaces and cleanup, and a crash of one bake
// cannot take the worker down.
//
// It is safe to run for many teams: every API call needs a team's token
// (store keeps only their hashes), a team sees its own bakes only, the
// API refuses foreign Host headers and bodies that are not JSON, requests
// and teams have limits, the embedded NATS takes only the key it
// generated (broker), workers check every request again and stop a bake
// at its timeout, and who did what goes to an audit stream.
package bakery
