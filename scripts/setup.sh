#!/usr/bin/env bash
# Set up this project on a fresh machine: the Fashion-MNIST files from Debian (where apt
# is available) and a virtualenv in .venv with the pinned Python packages.
#
#   bash scripts/setup.sh          # CPU TensorFlow, to run the pipeline
#   bash scripts/setup.sh --gpu    # TensorFlow with CUDA, on a machine with an NVIDIA GPU
#   bash scripts/setup.sh --dev    # CPU TensorFlow plus the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=requirements/cpu.txt
case "${1:-}" in
  --gpu) requirements=requirements/gpu.txt ;;
  --dev) requirements=requirements/dev.txt ;;
  "") ;;
  *) echo "usage: bash scripts/setup.sh [--gpu|--dev]" >&2; exit 2 ;;
esac

sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"

# apt_install WHAT-FOR PACKAGE...: install the Debian packages that are missing; where apt or
# root is not to be had, warn and go on (the tests that need them then skip, saying why).
apt_install() {
  local what=$1 missing=()
  shift
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
  done
  ((${#missing[@]} == 0)) && return 0
  if ! command -v apt-get >/dev/null \
      || ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"; }; then
    echo "warning: could not install ${missing[*]}; $what" >&2
  fi
}

# The dataset as a file:// mirror (data.mirrors in params.yaml), so the pipeline also
# runs where the official mirrors cannot be reached.
apt_install "the download stage will try the other mirrors" dataset-fashion-mnist

# The servers the end-to-end tests start on 127.0.0.1: OpenSSH for the SSH remote, and a
# SLURM cluster with accounting (scripts/slurm-test-cluster.sh).
if [[ $requirements == requirements/dev.txt ]]; then
  apt_install "the SSH remote tests will skip" openssh-server
  # Docker (dockerd, which the container tests start themselves, and a client with BuildKit built
  # in) and debootstrap, which makes the image's Debian base without a registry. Where Docker is
  # already installed (Docker CE), it stays: docker.io would replace it.
  docker=(docker.io)
  command -v dockerd >/dev/null && docker=()
  apt_install "the container tests will skip" "${docker[@]}" debootstrap
  $sudo bash scripts/slurm-test-cluster.sh install --accounting \
    || echo "warning: could not install SLURM; the SLURM tests will skip" >&2
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r "$requirements" -c requirements/constraints.txt
echo "set up: activate with 'source .venv/bin/activate'"
