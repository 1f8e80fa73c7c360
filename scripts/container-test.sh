#!/usr/bin/env bash
# container-test.sh: the container lane of CI (.ci/run). Builds the image of
# deploy/Containerfile with podman and runs it on this machine:
#
#   1. installs podman, runc and debootstrap (apt, through scripts/deps.sh);
#   2. makes the base image locally when podman does not have it (no registry
#      is reachable here): debootstrap a minimal bookworm from this machine's
#      Debian mirror, slimmed like debian:bookworm-slim, imported under the
#      exact name the Containerfile's FROM uses; podman's store keeps it for
#      the next run;
#   3. builds the Containerfile, checks the image's settings (non-root user,
#      volume, port, health check, mqd as entrypoint, no compiler inside);
#   4. runs it with the data dir on a named volume and --network host, mqd
#      listening on 127.0.0.1 only, and drives it from the host with the
#      host's own mqctl: push two, pull one and ack it;
#   5. stops it (SIGTERM) expecting exit code 0 and a clean log, starts a new
#      container on the same volume: the message pushed but not pulled is
#      still there, the acked one is gone; stops that one the same way;
#   6. removes its containers and volume (the images stay, as build cache).
#
# Prints a PASS/FAIL line per check and records each check in
# build-test-container/testlog.json (meson's testlog format), which
# scripts/test-summary.py counts into the "N passed, N failed" line of
# .ci/run. Measurements (image size, time from `podman run` to the first
# answered `mqctl ping`) go to build-test-container/report.txt.
# Exit status 0 only if every check passed. Needs root (debootstrap, rootful
# podman). Nothing is skipped: if podman cannot run here, the lane fails.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=build-test-container
rm -rf "$out"
mkdir -p "$out"
results=$repo/$out/testlog.json
report=$repo/$out/report.txt
: >"$results"

containerfile=deploy/Containerfile
# The base image: the default of the Containerfile's DEBIAN_IMAGE argument.
base_image=$(sed -n 's/^ARG DEBIAN_IMAGE=//p' "$containerfile" | head -n1)
image=localhost/mq:ci
run_id=mq-ci-$$
vol=$run_id-data
containers=()
failed=0
finished=0

now_ms() { date +%s%3N; }

# record NAME OK|FAIL DETAIL: one PASS/FAIL line and one testlog entry.
record() {
	python3 - "$results" "$@" <<'PY'
import json, sys
path, name, res, detail = sys.argv[1:5]
with open(path, "a") as f:
    f.write(json.dumps({"name": "container/" + name, "result": res,
                        "returncode": 0 if res == "OK" else 1,
                        "stdout": detail + "\n", "stderr": "", "duration": 0}) + "\n")
PY
	if [ "$2" = OK ]; then
		echo "PASS: container: $1${3:+: $3}"
	else
		echo "FAIL: container: $1: $3"
		failed=$((failed + 1))
	fi
}

cleanup() {
	local c
	for c in "${containers[@]}"; do
		podman rm -f -t 0 "$c" >/dev/null 2>&1
	done
	podman volume rm -f "$vol" >/dev/null 2>&1
	if [ "$finished" != 1 ]; then
		record lane FAIL "the lane stopped before its last check (see above)"
	fi
}
trap cleanup EXIT

# fatal NAME DETAIL [LOGFILE]: record the failure, show the log's tail, stop.
fatal() {
	record "$1" FAIL "$2"
	if [ -n "${3:-}" ] && [ -f "$3" ]; then
		echo "---- last lines of $3" >&2
		tail -n 40 "$3" >&2
		echo "----" >&2
	fi
	finished=1
	exit 1
}

# ---- 1. tools ---------------------------------------------------------------
[ "$(id -u)" = 0 ] || fatal setup "needs root (rootful podman, debootstrap); run it as root as CI does"

# In a plain chroot (../shared/tools/fresh-check), "/" is not a mount point,
# and podman cannot unpack an image layer: containers/storage makes "/" a
# slave mount first, which fails with "processing tar file(remount /, flags:
# 0x44000: invalid argument)"; and runc finds no cgroup mount when only /sys
# itself was bound in. Then run this script again in its own mount namespace,
# chrooted into a bind mount of "/" (a mount point), with the host's cgroup
# hierarchies mounted again under its /sys/fs/cgroup. The namespace and its
# mounts go away with the script. Only done when the host's mount holding
# this root is private, so that nothing propagates back to the host.
if [ "${1:-}" = --enter-root ]; then
	set -e
	new=/run/mq-ci-root
	mkdir -p "$new"
	mount --rbind / "$new"
	mount --make-rprivate "$new"
	if ! awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) ~ /^cgroup2?$/) f = 1; break } }
		END { exit !f }' /proc/self/mountinfo; then
		mount -t tmpfs -o mode=755 cgroup "$new/sys/fs/cgroup"
		awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) ~ /^cgroup2?$/) print $(i + 1), $5, $(i + 3); break } }' \
			/proc/1/mountinfo | while read -r fstype target opts; do
			mkdir -p "$new$target"
			if [ "$fstype" = cgroup2 ]; then
				mount -t cgroup2 cgroup2 "$new$target"
			else
				mount -t cgroup -o "${opts#rw,}" cgroup "$new$target"
			fi
		done
	fi
	exec chroot "$new" env MQ_CT_REROOTED=1 bash -c 'cd "$0" && exec bash scripts/container-test.sh' "$repo"
fi
if ! mountpoint -q / && [ -z "${MQ_CT_REROOTED:-}" ]; then
	d=$(stat -c %d /)
	dev="$((d >> 8 & 0xfff)):$(((d & 0xff) | (d >> 12 & 0xfff00)))"
	if awk -v dev="$dev" '$3 == dev && $4 == "/" && / shared:[0-9]/ { f = 1 } END { exit !f }' /proc/1/mountinfo; then
		fatal setup "in a chroot whose filesystem's mount is shared with the host: podman cannot unpack images here (/ is not a mount point) and re-rooting would leak mounts; run the lane outside the chroot"
	fi
	echo "container: / is not a mount point (a chroot): re-running in a private mount namespace" >&2
	exec unshare --mount --propagation unchanged bash scripts/container-test.sh --enter-root
fi
if ! MQ_DEPS_EXTRA="podman runc debootstrap python3-yaml" scripts/deps.sh >"$out/deps.log" 2>&1; then
	fatal setup "installing podman, runc, debootstrap, python3-yaml and the build deps failed" "$out/deps.log"
fi
# This machine's quirks (../shared/TOOLCHAIN.md section 5): crun cannot run
# containers under its hybrid cgroup layout, and podman's default
# RLIMIT_NOFILE/NPROC exceed the hard limits, which cannot be raised without
# CAP_SYS_RESOURCE. runc and ulimits within the hard limits work everywhere.
hard_nofile=$(ulimit -Hn)
hard_nproc=$(ulimit -Hu)
[ "$hard_nofile" = unlimited ] && hard_nofile=1048576
[ "$hard_nproc" = unlimited ] || [ "$hard_nproc" -gt 4096 ] && hard_nproc=4096
cat >"$out/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$hard_nofile:$hard_nofile", "nproc=$hard_nproc:$hard_nproc"]

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$repo/$out/containers.conf
if ! podman info >"$out/podman-info.log" 2>&1; then
	fatal setup "podman does not work here" "$out/podman-info.log"
fi
record setup OK "$(podman --version), $(runc --version | head -n1)"

# ---- 2. base image ------------------------------------------------------------
# debian_mirror: the Debian mirror this machine's apt uses.
debian_mirror() {
	local m
	m=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null)
	[ -n "$m" ] || m=$(awk '/^deb / && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
	echo "${m:-http://deb.debian.org/debian}"
}

make_base_image() {
	local rootfs mirror security
	mirror=$(debian_mirror)
	security=${mirror%/debian}/debian-security
	rootfs=$(mktemp -d /var/tmp/mq-ci-rootfs.XXXXXX)
	base_log=$out/debootstrap.log
	if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$out/debootstrap.log" 2>&1; then
		rm -rf "$rootfs"
		return 1
	fi
	# What the official debian:bookworm-slim adds: deb822 sources, no docs,
	# man pages or locales installed by later apt-get installs, no apt caches.
	rm -f "$rootfs/etc/apt/sources.list"
	cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
	cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
	echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
	find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
	find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$rootfs"/usr/share/{man,info,groff,linda,locale}/* "$rootfs"/var/lib/apt/lists/* \
		"$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
		"$rootfs"/var/log/* "$rootfs"/tmp/*
	# /etc/hostname, /etc/resolv.conf and /etc/hosts are the container engine's.
	rm -f "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"
	base_log=$out/import.log
	if ! tar -C "$rootfs" --numeric-owner -c . |
		podman import --change 'CMD ["bash"]' \
			--change 'LABEL org.mq.base="debootstrap --variant=minbase bookworm, by scripts/container-test.sh"' \
			--message "debootstrap minbase bookworm from $mirror" - "$base_image" >"$out/import.log" 2>&1; then
		rm -rf "$rootfs"
		return 1
	fi
	rm -rf "$rootfs"
}

[ -n "$base_image" ] || fatal base-image "no 'ARG DEBIAN_IMAGE=' default in $containerfile"
if podman image exists "$base_image"; then
	record base-image OK "$base_image already in podman's store"
else
	t0=$(now_ms)
	make_base_image || fatal base-image "could not make $base_image (log: $base_log)" "$base_log"
	record base-image OK "made $base_image with debootstrap in $(( ($(now_ms) - t0) / 1000 )) s"
fi

# ---- 3. the host's mqctl, and the image ---------------------------------------------
if ! { meson setup "$out/build" -Dtests=false && ninja -C "$out/build" -j2 tools/mqctl; } >"$out/host-build.log" 2>&1; then
	fatal host-mqctl "building mqctl on the host failed" "$out/host-build.log"
fi
mqctl_bin=$repo/$out/build/tools/mqctl

t0=$(now_ms)
if ! podman build --format docker --network host -f "$containerfile" -t "$image" . >"$out/image-build.log" 2>&1; then
	fatal image-build "podman build -f $containerfile failed" "$out/image-build.log"
fi
build_s=$(( ($(now_ms) - t0) / 1000 ))
# Tag the build stage too (all cached: no work), so that the prune at the end
# keeps its apt-get layer for the next run.
podman build --format docker --network host --target build -f "$containerfile" \
	-t localhost/mq-build:ci . >>"$out/image-build.log" 2>&1
size=$(podman image ls --format '{{.Size}}' "$image" | head -n1)
size_bytes=$(podman image inspect --format '{{.Size}}' "$image")
base_size=$(podman image ls --format '{{.Size}}' "$base_image" | head -n1)
record image-build OK "$image built in $build_s s, $size"

# The image's settings, as a user of it would rely on them.
podman image inspect "$image" >"$out/image-inspect.json" 2>&1
if msg=$(python3 - "$out/image-inspect.json" <<'PY'
import json, sys
img = json.load(open(sys.argv[1]))[0]
cfg = img.get("Config", {})
hc = img.get("HealthCheck") or img.get("Healthcheck") or cfg.get("Healthcheck") or {}
env = dict(e.split("=", 1) for e in cfg.get("Env", []))
errs = []
if cfg.get("User") in (None, "", "0", "root", "0:0"):
    errs.append("runs as root (User=%r)" % cfg.get("User"))
if "/var/lib/mq" not in (cfg.get("Volumes") or {}):
    errs.append("no volume /var/lib/mq")
if "7450/tcp" not in (cfg.get("ExposedPorts") or {}):
    errs.append("port 7450 not exposed")
if (cfg.get("Entrypoint") or [""])[0] not in ("mqd", "/usr/local/bin/mqd"):
    errs.append("entrypoint is %r, not mqd" % cfg.get("Entrypoint"))
if "ping" not in " ".join(hc.get("Test") or []) or "mqctl" not in " ".join(hc.get("Test") or []):
    errs.append("no HEALTHCHECK with mqctl ping (%r)" % hc)
if env.get("MQ_LISTEN") != "tcp://0.0.0.0:7450" or env.get("MQ_DATA_DIR") != "/var/lib/mq":
    errs.append("MQ_LISTEN/MQ_DATA_DIR not set for the container: %r" % env)
if errs:
    print("; ".join(errs))
    sys.exit(1)
print("user %s, volume /var/lib/mq, port 7450, healthcheck %s" % (cfg["User"], " ".join(hc["Test"])))
PY
); then
	record image-config OK "$msg"
else
	record image-config FAIL "$msg"
fi

# Only the runtime pieces inside: no compiler, no headers, every library found.
if msg=$(podman run --rm --network none --no-healthcheck --entrypoint /bin/sh "$image" -c '
	set -e
	test "$(id -u)" != 0 || { echo "runs as root"; exit 1; }
	for t in gcc cc meson ninja; do ! command -v $t >/dev/null || { echo "$t is in the image"; exit 1; }; done
	! ls /usr/include/nng >/dev/null 2>&1 || { echo "nng headers are in the image"; exit 1; }
	! ldd /usr/local/bin/mqd /usr/local/bin/mqctl | grep "not found"
	mqd --version' 2>&1); then
	record image-runtime OK "$(echo "$msg" | tail -n1), uid $(podman run --rm --network none --no-healthcheck --entrypoint id "$image" -u), no compiler or headers"
else
	record image-runtime FAIL "$(echo "$msg" | tail -n3 | tr '\n' ' ')"
fi

# deploy/compose.yaml: the service a user starts with one command. It is not
# run here (its port mapping needs podman's bridge network, which leaves
# iptables rules behind on this machine); check that it parses and that it
# builds this Containerfile, keeps the data on a named volume and publishes
# 7450 on loopback.
if msg=$(python3 - deploy/compose.yaml "$containerfile" <<'PY'
import os, sys, yaml
path, containerfile = sys.argv[1:3]
doc = yaml.safe_load(open(path))
errs = []
svc = (doc.get("services") or {}).get("mqd") or {}
b = svc.get("build") or {}
ctx = os.path.normpath(os.path.join(os.path.dirname(path), b.get("context", ".")))
if os.path.normpath(os.path.join(ctx, b.get("dockerfile", "Dockerfile"))) != os.path.normpath(containerfile):
    errs.append("service mqd does not build %s" % containerfile)
vols = [v for v in svc.get("volumes", []) if isinstance(v, str) and v.endswith(":/var/lib/mq")]
if not vols or vols[0].split(":")[0] not in (doc.get("volumes") or {}):
    errs.append("no named volume on /var/lib/mq")
if "127.0.0.1:7450:7450" not in [str(p) for p in svc.get("ports", [])]:
    errs.append("port 7450 not published on 127.0.0.1")
if "mqctl" not in str((svc.get("healthcheck") or {}).get("test")):
    errs.append("no mqctl health check")
print("; ".join(errs) if errs else "service mqd: builds %s, volume %s, port 127.0.0.1:7450" % (containerfile, vols[0]))
sys.exit(1 if errs else 0)
PY
); then
	record compose-file OK "$msg"
else
	record compose-file FAIL "$msg"
fi

# The image as it is (MQ_LISTEN=tcp://0.0.0.0:7450) without tokens: mqd must
# refuse to start (docs/security.md), with the reason in its log.
if msg=$(podman run --rm --network none --no-healthcheck "$image" 2>&1); then
	record no-token-refusal FAIL "mqd started on 0.0.0.0 without tokens"
elif echo "$msg" | grep -q "no tokens are configured"; then
	record no-token-refusal OK "on 0.0.0.0 without tokens mqd refuses to start: $(echo "$msg" | grep -o 'mqd listens on a non-loopback address and no tokens are configured')"
else
	record no-token-refusal FAIL "mqd failed without the expected reason: $(echo "$msg" | tail -n2 | tr '\n' ' ')"
fi

# ---- 4. run it, drive it from the host --------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=tcp://127.0.0.1:$port
# Tokens on, as a deployment would have them: one token with every right.
secret=ci-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
mqctl() { MQ_TOKEN=$secret "$mqctl_bin" --url "$url" --timeout 5000 "$@"; }
podman volume create "$vol" >/dev/null || fatal volume "podman volume create $vol failed"

# start NAME: run a container on the volume; MQ_LISTEN on loopback only (the
# host's network), MQ_URL to match for the health check.
start() {
	containers+=("$1")
	podman run -d --name "$1" --network host -v "$vol:/var/lib/mq" \
		-e MQ_LISTEN="$url" -e MQ_URL="$url" -e MQ_AUTH_TOKENS="ci=$secret produce=* consume=* admin=*" \
		"$image" >"$out/$1.run.log" 2>&1
}

# wait_ping NAME: bounded wait (at most 300 tries) for the first answered
# ping, 100 ms per try (a ping to a port nobody listens on waits out its
# timeout); prints the milliseconds since the caller's t0.
wait_ping() {
	local i
	for ((i = 1; i <= 300; i++)); do
		if "$mqctl_bin" --url "$url" --timeout 100 ping >/dev/null 2>&1; then
			echo $(($(now_ms) - t0))
			return 0
		fi
		if ((i % 10 == 0)) && [ "$(podman inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" != true ]; then
			return 1
		fi
		sleep 0.01
	done
	return 1
}

# stop_clean NAME CHECK: podman stop (SIGTERM, 20 s before SIGKILL), then
# exit code 0 and a log that says it stopped cleanly with no WARN or ERROR line.
stop_clean() {
	local code logf=$out/$1.log check=$2
	if ! podman stop -t 20 "$1" >/dev/null 2>&1; then
		record "$check" FAIL "podman stop failed"
		return
	fi
	code=$(podman inspect --format '{{.State.ExitCode}}' "$1")
	podman logs "$1" >"$logf" 2>&1
	if [ "$code" != 0 ]; then
		record "$check" FAIL "exit code $code after SIGTERM (log: $logf)"
	elif ! grep -q 'SIGTERM: shutting down' "$logf" || ! grep -q 'stopped cleanly' "$logf"; then
		record "$check" FAIL "the log does not show a SIGTERM shutdown (log: $logf)"
	elif grep -Eq ' (WARN|ERROR) ' "$logf"; then
		record "$check" FAIL "warnings or errors in the log: $(grep -E ' (WARN|ERROR) ' "$logf" | head -n3)"
	else
		record "$check" OK "SIGTERM, exit code 0, log: $(grep -c . "$logf") lines, 'stopped cleanly', no WARN/ERROR"
	fi
}

t0=$(now_ms)
start "$run_id-a" || fatal run "podman run failed" "$out/$run_id-a.run.log"
run_ms=$(($(now_ms) - t0))
if ! start_ms=$(wait_ping "$run_id-a"); then
	podman logs "$run_id-a" >"$out/$run_id-a.log" 2>&1
	fatal run "mqd in the container never answered a ping on $url" "$out/$run_id-a.log"
fi
record run OK "podman run -d returned after $run_ms ms, first ping answered $start_ms ms after podman run"

# The image's HEALTHCHECK (mqctl ping inside the container).
if [ -z "${MQ_CT_REROOTED:-}" ]; then
	if hc=$(podman healthcheck run "$run_id-a" 2>&1); then
		record healthcheck OK "podman healthcheck run: ${hc:-healthy}"
	else
		record healthcheck FAIL "podman healthcheck run: $hc"
	fi
else
	# Re-rooted in a chroot, `podman exec` (and so `podman healthcheck run`)
	# cannot work: runc exec enters the container's mount namespace at that
	# namespace's root, which is the host's, not the chroot's ("exec: mqctl:
	# executable file not found"). Run the image's HEALTHCHECK command in a
	# second container of the image on the same network instead.
	read -r -a hc_cmd < <(python3 -c 'import json,sys; img=json.load(open(sys.argv[1]))[0]
hc=img.get("HealthCheck") or img.get("Healthcheck") or img["Config"].get("Healthcheck") or {}
print(" ".join(hc.get("Test", ["NONE"])[1:]))' "$out/image-inspect.json")
	if [ ${#hc_cmd[@]} -gt 0 ] && hc=$(podman run --rm --network host --no-healthcheck -e MQ_URL="$url" \
		--entrypoint "${hc_cmd[0]}" "$image" "${hc_cmd[@]:1}" 2>&1); then
		record healthcheck OK "in a chroot, so the HEALTHCHECK command (${hc_cmd[*]}) ran in a second container: $hc"
	else
		record healthcheck FAIL "the HEALTHCHECK command (${hc_cmd[*]:-none}) in a second container: ${hc:-}"
	fi
fi

# Tokens are on: a push without the token is refused.
if out_nt=$("$mqctl_bin" --url "$url" --timeout 5000 push ci-jobs x 2>&1); then
	record auth FAIL "a push without a token was accepted: $out_nt"
else
	record auth OK "push without a token refused: $(echo "$out_nt" | head -n1)"
fi

# push, pull, ack from the host.
q=ci-jobs
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
if id1=$(mqctl --json push "$q" first | json 'd["id"]') &&
	id2=$(mqctl --json push "$q" second | json 'd["id"]') &&
	pulled=$(mqctl --json pull "$q" | json '"%s %s %s" % (d["messages"][0]["id"], d["messages"][0]["lease_token"], d["messages"][0]["payload"])') &&
	read -r pid ptok ppay <<<"$pulled" && [ "$pid" = "$id1" ] && [ "$ppay" = first ] &&
	mqctl ack "$q" "$pid" "$ptok" >/dev/null &&
	ready=$(mqctl --json queue stats "$q" | json 'd["stats"]["ready"], d["stats"]["in_flight"], d["stats"]["acked_total"]') &&
	[ "$ready" = "1 0 1" ]; then
	record push-pull-ack OK "pushed ids $id1 and $id2, pulled and acked $id1; ready 1, in flight 0, acked 1"
else
	record push-pull-ack FAIL "push/pull/ack from the host over $url did not go as expected (pulled: ${pulled:-nothing}, stats ready/in_flight/acked: ${ready:-?})"
fi

# ---- 5. restart on the same volume; SIGTERM ------------------------------------------------
stop_clean "$run_id-a" sigterm-stop
podman rm "$run_id-a" >/dev/null 2>&1

t0=$(now_ms)
start "$run_id-b" || fatal restart "podman run of the second container failed" "$out/$run_id-b.run.log"
if ! restart_ms=$(wait_ping "$run_id-b"); then
	podman logs "$run_id-b" >"$out/$run_id-b.log" 2>&1
	fatal restart "the second container never answered a ping on $url" "$out/$run_id-b.log"
fi
if pulled=$(mqctl --json pull "$q" --max 10 | json '" ".join("%s:%s" % (m["id"], m["payload"]) for m in d["messages"])') &&
	[ "$pulled" = "${id2:-?}:second" ]; then
	record restart-data OK "new container on the same volume: message $id2 (pushed, not pulled) is there, acked $id1 is gone"
else
	record restart-data FAIL "after the restart, pulled '${pulled:-nothing}', expected '${id2:-?}:second'"
fi
stop_clean "$run_id-b" sigterm-stop-after-restart

# ---- 6. numbers ------------------------------------------------------------------------------
cat >"$report" <<EOF
container lane, $(date -u +%Y-%m-%dT%H:%MZ), $(podman --version), runtime runc, $(nproc) cores
image $image: $size ($size_bytes bytes); base $base_image: $base_size
image build (podman build --format docker --network host): $build_s s
podman run -d to the first answered mqctl ping: $start_ms ms (fresh volume; podman run -d itself returned after $run_ms ms), $restart_ms ms (restart on the data)
EOF
sed 's/^/container: /' "$report"
# Untagged images of earlier builds (the base, localhost/mq:ci and the build
# stage's localhost/mq-build:ci stay).
podman image prune -f >/dev/null 2>&1
finished=1
[ "$failed" = 0 ] || { echo "container: $failed check(s) failed" >&2; exit 1; }
exit 0
