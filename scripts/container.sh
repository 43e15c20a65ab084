#!/usr/bin/env bash
# Build the project's image (Dockerfile) and run this checkout in it, as yourself: the checkout
# is mounted at /work and every file the container writes belongs to you.
#
#   bash scripts/container.sh build [--gpu] [DOCKER-BUILD-OPTION...]
#   bash scripts/container.sh run COMMAND...   # dvc repro | snakemake -c2 | dvc exp run -S lr=0.01 | ...
#   bash scripts/container.sh shell            # bash in the container
#   bash scripts/container.sh jupyter [PORT]   # JupyterLab on http://127.0.0.1:PORT (default 8888)
#
# Environment:
#   IMAGE        the image's name (default fashion-mnist; fashion-mnist-gpu after `build --gpu`)
#   BASE         the Debian bookworm image to build on (default: the Dockerfile's, from Docker Hub;
#                scripts/make-base-image.sh makes one without a registry)
#   GPUS         `docker run --gpus` value for run/shell/jupyter, e.g. all (needs the GPU image)
#   CA_BUNDLE    the CA bundle pip inside the build trusts (default: this machine's); it is passed
#                as a build secret, so it never lands in the image
#   RUN_OPTIONS  more `docker run` options, e.g. "--network host"
#   DOCKER       the docker client (default: docker)
set -euo pipefail

fail() { echo "error: $*" >&2; exit 1; }
usage() { echo "usage: bash scripts/container.sh build [--gpu] | run COMMAND... | shell | jupyter [PORT]" >&2; exit 2; }

cd "$(dirname "$0")/.."
docker=${DOCKER:-docker}
action=${1:-}
[[ -n $action ]] || usage
shift

# One line for each way Docker can be missing, before anything else runs.
command -v "$docker" >/dev/null \
  || fail "$docker is not installed; install Docker (Debian: sudo apt-get install docker.io) and run this again"
if ! reason=$("$docker" info --format '{{.ServerVersion}}' 2>&1 >/dev/null) || [[ -n $reason ]]; then
  reason=$(grep -m1 -v '^$' <<<"$reason" || true)
  fail "no Docker daemon answers (${reason:-no reply}); start it (sudo systemctl start docker, or sudo dockerd &) or join the docker group"
fi
# DVC needs the checkout's git repository: a copy without .git (an unpacked archive) cannot run.
[[ -f dvc.yaml && -e .git ]] \
  || fail "$PWD is not a git checkout of the project; run this script from a clone (git clone ...)"

variant=cpu
image=${IMAGE:-}

build() {
  if [[ ${1:-} == --gpu ]]; then variant=gpu; shift; fi
  # Not `$([[ ... ]] && echo -gpu)`: its status, 1 for cpu, would end the script (set -e) silently.
  if [[ -z $image && $variant == gpu ]]; then image=fashion-mnist-gpu; fi
  image=${image:-fashion-mnist}
  # Docker 23 and later build with BuildKit only through the buildx plugin; Debian's docker.io
  # (20.10) has BuildKit built in. The Dockerfile's secret and cache mounts need BuildKit.
  local version
  version=$("$docker" version --format '{{.Client.Version}}' 2>/dev/null || echo 0)
  if (( ${version%%.*} >= 23 )) && ! "$docker" buildx version >/dev/null 2>&1; then
    fail "this docker client ($version) builds with BuildKit only through the buildx plugin, which is missing; install docker-buildx, or set DOCKER to a client with BuildKit built in (Debian's docker.io: DOCKER=/usr/bin/docker)"
  fi
  local options=(--build-arg "VARIANT=$variant" -t "$image")
  [[ -n ${BASE:-} ]] && options+=(--build-arg "BASE=$BASE")
  # Behind an intercepting proxy pip trusts only what this machine trusts: its bundle, as a secret.
  local ca=${CA_BUNDLE:-${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}
  [[ -f $ca ]] && options+=(--secret "id=ca,src=$ca")
  DOCKER_BUILDKIT=1 "$docker" build "${options[@]}" "$@" .
}

# docker run with this checkout at /work, as this user, with this user's git identity (the
# image's fallback identity is for dvc exp run's hidden commits only).
run() {
  image=${image:-fashion-mnist}
  "$docker" image inspect "$image" >/dev/null 2>&1 \
    || fail "there is no image $image; build it first: bash scripts/container.sh build"
  local options=(--rm --init -v "$PWD:/work" -w /work -u "$(id -u):$(id -g)")
  [[ -t 0 && -t 1 ]] && options+=(-it)
  [[ -n ${GPUS:-} ]] && options+=(--gpus "$GPUS")
  local name email
  name=$(git config user.name || true)
  email=$(git config user.email || true)
  [[ -n $name ]] && options+=(-e "GIT_AUTHOR_NAME=$name" -e "GIT_COMMITTER_NAME=$name")
  [[ -n $email ]] && options+=(-e "GIT_AUTHOR_EMAIL=$email" -e "GIT_COMMITTER_EMAIL=$email")
  # shellcheck disable=SC2206  # RUN_OPTIONS is a list of words on purpose
  [[ -n ${RUN_OPTIONS:-} ]] && options+=(${RUN_OPTIONS})
  "$docker" run "${options[@]}" "$image" "$@"
}

case $action in
  build) build "$@" ;;
  run) (($# > 0)) || usage; run "$@" ;;
  shell) run bash ;;
  jupyter)
    port=${1:-8888}
    [[ $port =~ ^[0-9]+$ ]] || fail "port '$port' is not a number; give one such as 8888"
    # Published on 127.0.0.1 only: the notebook server runs code for whoever holds its token.
    # It runs as you; allow_root is for the one user whose uid that is (Jupyter refuses root otherwise).
    RUN_OPTIONS="${RUN_OPTIONS:-} -p 127.0.0.1:$port:8888" \
      run jupyter lab --ip=0.0.0.0 --port=8888 --no-browser --ServerApp.root_dir=/work --ServerApp.allow_root=True ;;
  *) usage ;;
esac
