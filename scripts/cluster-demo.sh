#!/bin/bash
# cluster-demo.sh: the bakery on a three-node NATS JetStream cluster, and
# what it does when a node dies and another loses the network.
#
# Three "hosts", each a network namespace (ip netns) with a veth pair to a
# bridge on this machine, addresses in 198.18.0.0/15 (the range RFC 2544
# sets aside for tests); two regions: east (nodes 1 and 2), west (node 3).
# Each node runs `aminate serve` (an embedded NATS member, the API and a
# worker) with its own state directory, the same base copied into each.
# A stream of bakes of small local .deb packages goes to all three APIs;
# node 1 is killed (SIGKILL) while it bakes and started again later; node 3
# is cut off the network for a while, and the last third of the bakes,
# all for its region, go to the other nodes' APIs meanwhile. It ends by printing
#   N submitted, N completed, 0 lost
# and fails unless every bake completed exactly once (one image per bake,
# across the nodes' clouds). Everything it makes goes on exit (trap).
#
# Usage (root): scripts/cluster-demo.sh [BAKES]
#   AMINATE   the aminate binary (default: aminate on PATH)
#   BASE_IMG  a raw Debian base image (default: the test suite's cached one)
#   BAKE_SECONDS how long each package's postinst sleeps (default 10)
#   KEEP_LOGS a directory to copy the nodes' serve logs to on exit
set -euo pipefail

BAKES=${1:-9}
AMINATE=${AMINATE:-$(command -v aminate || true)}
BASE_IMG=${BASE_IMG:-/var/tmp/aminator-test-cache-shared/debian-bookworm-minbase.img}
ACK_WAIT=${ACK_WAIT:-20s}
CUT_SECONDS=${CUT_SECONDS:-10}
BAKE_SECONDS=${BAKE_SECONDS:-10}
[ "$(id -u)" = 0 ] || { echo "cluster-demo: run as root" >&2; exit 2; }
[ -x "$AMINATE" ] || { echo "cluster-demo: no aminate binary (set AMINATE)" >&2; exit 2; }
[ -f "$BASE_IMG" ] || { echo "cluster-demo: no base image $BASE_IMG (set BASE_IMG)" >&2; exit 2; }

ID=$(( $$ % 250 + 1 ))
NET=198.18.$ID
BR=amcbr$ID
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/aminator-cluster-XXXXXX")
declare -A PID REGION=([1]=east [2]=east [3]=west)
log() { echo "cluster-demo: $*" >&2; }

cleanup() {
	set +e
	for i in 1 2 3; do [ -n "${PID[$i]:-}" ] && kill -TERM "${PID[$i]}" 2>/dev/null; done
	for i in 1 2 3; do
		p=${PID[$i]:-}
		[ -z "$p" ] && continue
		for _ in $(seq 60); do kill -0 "$p" 2>/dev/null || break; sleep 1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for i in 1 2 3; do
		[ -d "$WORK/n$i" ] && "$AMINATE" --state-dir "$WORK/n$i" --log-dir "$WORK/log$i" init --unmount >/dev/null 2>&1
		ip netns del "amc$ID-n$i" 2>/dev/null
		ip link del "amc$ID-v$i" 2>/dev/null
	done
	ip link del "$BR" 2>/dev/null
	[ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" && cp "$WORK"/serve*.log "$KEEP_LOGS"/ 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { local i=$1; shift; nsenter --net="/run/netns/amc$ID-n$i" "$@"; }
node() { local i=$1; shift; "$AMINATE" --state-dir "$WORK/n$i" --log-dir "$WORK/log$i" "$@"; }

network() {
	ip link add "$BR" type bridge
	ip addr add "$NET.254/24" dev "$BR"
	ip link set "$BR" up
	for i in 1 2 3; do
		ip netns add "amc$ID-n$i"
		ip link add "amc$ID-v$i" type veth peer name eth0 netns "amc$ID-n$i"
		ip link set "amc$ID-v$i" master "$BR" up
		in_ns "$i" ip addr add "$NET.$i/24" dev eth0
		in_ns "$i" ip link set eth0 up
		in_ns "$i" ip link set lo up
	done
}

# bases imports the base once and copies the state to the other nodes, so
# it has the same id on each.
bases() {
	node 1 images import tiny-base "$BASE_IMG" --role base >/dev/null
	node 1 init --unmount >/dev/null
	for i in 2 3; do cp -a --sparse=always "$WORK/n1" "$WORK/n$i"; done
}

# start runs node i's aminate serve in its namespace.
start() {
	local i=$1 creds=()
	[ -f "$WORK/seed.nk" ] && creds=(--nats-creds "$WORK/seed.nk")
	# nsenter (without --fork) becomes aminate: $! is the node's process
	nsenter --net="/run/netns/amc$ID-n$i" "$AMINATE" --state-dir "$WORK/n$i" --log-dir "$WORK/log$i" serve --embedded-nats "${creds[@]}" \
		--embedded-nats-listen 127.0.0.1:4222 --embedded-nats-cluster demo --embedded-nats-server-name "n$i" \
		--embedded-nats-cluster-listen "$NET.$i:6222" --embedded-nats-routes "$NET.1:6222,$NET.2:6222,$NET.3:6222" \
		--listen "$NET.$i:8420" --worker-region "${REGION[$i]}" --workers 1 --package-dir "$WORK/pkgs" \
		--ack-wait "$ACK_WAIT" >>"$WORK/serve$i.log" 2>&1 &
	PID[$i]=$!
}

api() { # api NODE METHOD PATH [BODY | -f]
	local body=() fail=()
	case "${4:-}" in -f) fail=(-f) ;; "") ;; *) body=(--data "$4") ;; esac
	curl -sS "${fail[@]}" --connect-timeout 3 --max-time 20 -X "$2" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
		"${body[@]}" "http://$NET.$1:8420$3"
}

wait_api() {
	for _ in $(seq 180); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$NET.$1:8420/api/v1/bakes" || true)" = 401 ] && return 0
		sleep 1
	done
	log "node $1's API did not come up"; tail -20 "$WORK/serve$1.log" >&2; return 1
}

packages() {
	mkdir -p "$WORK/pkgs"
	for n in $(seq "$BAKES"); do
		local root="$WORK/pkgroot$n"
		mkdir -p "$root/DEBIAN" "$root/opt"
		printf 'Package: cluster-demo-%d\nVersion: 1.0\nArchitecture: all\nMaintainer: demo <demo@example.invalid>\nDescription: cluster demo\n' "$n" >"$root/DEBIAN/control"
		echo "$n" >"$root/opt/cluster-demo-$n"
		# a bake long enough to be caught in the middle
		printf '#!/bin/sh\nsleep %d\n' "$BAKE_SECONDS" >"$root/DEBIAN/postinst"
		chmod 755 "$root/DEBIAN/postinst"
		dpkg-deb -Zgzip -z1 --root-owner-group -b "$root" "$WORK/pkgs/cluster-demo-$n.deb" >/dev/null
	done
}

# submit sends bake n (of region $2, default east; every third bake west)
# to one of the nodes $3 (default: all), or the next whose API answers,
# trying again while the cluster elects a leader (an identical request is
# the same bake, never a second).
submit() {
	local n=$1 region=${2:-east} nodes=(${3:-1 2 3}) out="" i k
	(( n % 3 == 0 )) && region=west
	for k in $(seq 0 44); do
		i=${nodes[$(( (n + k) % ${#nodes[@]} ))]}
		out=$(api "$i" POST /api/v1/bakes "{\"package\":\"$WORK/pkgs/cluster-demo-$n.deb\",\"base_name\":\"tiny-base\",\"region\":\"$region\"}" 2>/dev/null || true)
		id=$(jq -r '.bake.id // empty' <<<"$out" 2>/dev/null || true)
		[ -n "$id" ] && { echo "$id" >>"$WORK/ids"; return 0; }
		sleep 1
	done
	log "bake $n not accepted: $out"; return 1
}

# records lists the bakes from the first API that answers well.
records() {
	local i
	for i in 2 1 3; do api "$i" GET "/api/v1/bakes?limit=500" -f 2>/dev/null && return 0; done
	return 1
}

# running_on prints the id of a bake running on node i's worker.
running_on() {
	records | jq -r --arg w "/${PID[$1]}/" '.bakes[]? | select(.state=="running" and (.worker|contains($w))) | .id' | head -1
}

main() {
	network
	bases
	packages
	start 1
	for _ in $(seq 60); do [ -f "$WORK/n1/nats/aminator.nk" ] && break; sleep 0.5; done
	cp "$WORK/n1/nats/aminator.nk" "$WORK/seed.nk" # every member shares node 1's key
	start 2
	start 3
	for i in 1 2 3; do wait_api "$i"; done
	TOKEN=$(in_ns 2 "$AMINATE" --state-dir "$WORK/n2" --log-dir "$WORK/log2" bakery token create --team demo)
	log "cluster up: $NET.1-3, regions east (n1, n2) and west (n3)"
	local third=$(( (BAKES + 2) / 3 )) n victim=""
	for n in $(seq "$third"); do submit "$n"; done
	for _ in $(seq 300); do victim=$(running_on 1 || true); [ -n "$victim" ] && break; sleep 0.5; done
	[ -n "$victim" ] || { log "node 1 never baked"; return 1; }
	sleep 2
	log "SIGKILL node 1 (pid ${PID[1]}) while it bakes $victim"
	kill -KILL "${PID[1]}"; wait "${PID[1]}" 2>/dev/null || true
	for n in $(seq $(( third + 1 )) $(( 2 * third < BAKES ? 2 * third : BAKES ))); do submit "$n" east "2 3"; done
	for _ in $(seq 300); do
		[ "$(records | jq -r --arg id "$victim" '.bakes[] | select(.id==$id) | .state')" = completed ] && break; sleep 2
	done
	log "bake $victim: $(records | jq -c --arg id "$victim" '.bakes[] | select(.id==$id) | {state, worker, attempts}')"
	start 1
	wait_api 1
	sleep 5 # the members settle their leaders
	log "node 1 is back; cutting node 3 (region west) off the network for ${CUT_SECONDS}s"
	ip link set "amc$ID-v3" down
	# The other APIs take west's bakes meanwhile (while west's workers'
	# presence lasts, else they answer 503 and the client tries again);
	# node 3 bakes them when it is back.
	( for n in $(seq $(( 2 * third + 1 )) "$BAKES"); do submit "$n" west "1 2"; done ) &
	local subs=$!
	sleep "$CUT_SECONDS"
	ip link set "amc$ID-v3" up
	log "node 3 is back"
	wait "$subs" || return 1
	# until every bake submitted has ended (as a record of the list says)
	local ended submitted
	submitted=$(sort -u "$WORK/ids" | wc -l)
	for _ in $(seq 600); do
		ended=$(records | jq --rawfile ids "$WORK/ids" '[.bakes[] | select((.id as $i | $ids | split("\n") | index($i)) and (.state=="completed" or .state=="failed" or .state=="canceled"))] | length' 2>/dev/null || echo 0)
		[ "$ended" = "$submitted" ] && break; sleep 2
	done
	verdict
}

# verdict prints the line and checks every bake made exactly one image.
verdict() {
	local submitted completed images distinct
	submitted=$(sort -u "$WORK/ids" | wc -l)
	completed=$(records | jq '[.bakes[] | select(.state=="completed")] | length')
	: >"$WORK/images"
	for i in 1 2 3; do
		node "$i" images list --output json | jq -r '.[]? | .tags.bakery_id // empty' >>"$WORK/images"
	done
	images=$(wc -l <"$WORK/images")
	distinct=$(sort -u "$WORK/images" | wc -l)
	echo "$submitted submitted, $completed completed, $(( submitted - completed )) lost"
	records | jq -r '.bakes[] | "  \(.id) \(.state) attempts=\(.attempts) worker=\(.worker) \(.error // "")"' >&2
	if [ "$images" != "$distinct" ]; then log "$(( images - distinct )) bakes made two images"; return 1; fi
	if [ "$completed" != "$submitted" ] || [ "$distinct" != "$completed" ]; then
		log "images $distinct for $completed completed bakes"; return 1
	fi
}

main
