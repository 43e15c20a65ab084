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

# The dataset as a file:// mirror (data.mirrors in params.yaml), so the pipeline also
# runs where the official mirrors cannot be reached.
if [[ ! -d /usr/share/datasets/fashion-mnist ]] && command -v apt-get >/dev/null; then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist; }; then
    echo "warning: could not install dataset-fashion-mnist; the download stage will try the other mirrors" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r "$requirements" -c requirements/constraints.txt
echo "set up: activate with 'source .venv/bin/activate'"
