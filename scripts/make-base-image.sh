#!/usr/bin/env bash
# Make a Debian base image without a container registry: debootstrap a minimal Debian of this
# machine's release from the mirror apt already uses, and import it as a docker image. The
# Dockerfile builds on it with `--build-arg BASE=<name>` (the tests do; so can a machine that
# reaches a Debian mirror but not Docker Hub).
#
#   sudo bash scripts/make-base-image.sh [NAME]     # default name: fmnist-base:<codename>
#
# Needs root (debootstrap), debootstrap, and a running docker daemon (client: $DOCKER, or docker).
set -euo pipefail

fail() { echo "error: $*" >&2; exit 1; }

# The release (bookworm) from /etc/os-release, the mirror from apt's own configuration: the
# first `deb` URI that serves that release, in deb822 (.sources) or one-line (.list) form.
# Nothing here names a host, so the image comes from whatever mirror the machine trusts.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[[ -n $codename ]] || fail "/etc/os-release names no VERSION_CODENAME; run this on Debian"
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk -v suite="$codename" '
      function check() { if (!done && types ~ /(^| )deb( |$)/ && suites ~ "(^| )" suite "( |$)" && uri != "") { print uri; done = 1 } }
      /^[ \t]*$/ { check(); types = suites = uri = "" }
      /^Types:/ { types = $0 } /^Suites:/ { suites = $0 } /^URIs:/ { uri = $2 }
      END { check() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    # deb [options] URI SUITE COMPONENTS...
    awk -v suite="$codename" '$1 == "deb" { sub(/\[[^]]*\] */, ""); if ($3 == suite) print $2 }' "$f"
  done
}
mirror=$(apt_mirror | head -n1)
[[ -n $mirror ]] || fail "no apt source for $codename in /etc/apt; add one, or pass a public base to the Dockerfile instead"

name=${1:-fmnist-base:$codename}
[[ $(id -u) -eq 0 ]] || fail "debootstrap needs root; run: sudo bash $0 ${1:-}"
command -v debootstrap >/dev/null || fail "debootstrap is not installed; run: sudo apt-get install debootstrap"
"${DOCKER:-docker}" info >/dev/null 2>&1 || fail "no docker daemon answers; start one (sudo dockerd &, or systemctl start docker)"

root=$(mktemp -d /tmp/base-image.XXXXXX)
trap 'rm -rf "$root"' EXIT
# minbase: dpkg, apt and essentials only; the Dockerfile adds what the project needs.
debootstrap --variant=minbase "$codename" "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -n 5 "$root.log" >&2; fail "debootstrap $codename from $mirror failed (log above: $root.log)"; }
rm -f "$root.log"
# Debian's docker images keep no apt lists or caches; neither does this one.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | "${DOCKER:-docker}" import --change 'CMD ["bash"]' - "$name" >/dev/null
echo "$name"
