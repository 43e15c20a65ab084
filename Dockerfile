# The pipeline's pinned environment (requirements/), Debian's copy of the dataset and JupyterLab,
# as one image. Run a checkout in it as yourself (README, "Running in a container"):
#
#   DOCKER_BUILDKIT=1 docker build -t fashion-mnist .
#   docker run --rm --init -v "$PWD:/work" -u "$(id -u):$(id -g)" fashion-mnist dvc repro
#
# or `bash scripts/container.sh build|run|shell|jupyter`, which adds these flags.
#
# Build arguments:
#   BASE      the Debian bookworm image to start from; Python 3.11 is what requirements/ pin for.
#             scripts/make-base-image.sh makes one without a registry (the tests use it).
#   VARIANT   cpu (requirements/cpu.txt) or gpu (requirements/gpu.txt: TensorFlow with CUDA from
#             PyPI; run it with `docker run --gpus all`).
#
# Behind an intercepting HTTPS proxy, pip needs the proxy's CA: pass the host's bundle as a
# secret, which reaches the pip step only and is never stored in a layer:
#   DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt -t fashion-mnist .
ARG BASE=debian:bookworm-slim
FROM ${BASE}

# Python 3.11 with venv, git (DVC keeps experiments in it), and the dataset as the file:// mirror
# of params.yaml, so the pipeline needs no network at run time. No recommends, no apt lists.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv git ca-certificates dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# Requirements before code: editing the project rebuilds only the small layers below the venv.
# The pip cache lives in a BuildKit cache mount, not the image, so a changed pin downloads only
# what changed. The venv first gets the pip of constraints.txt, the one setup.sh's venv has, so
# that both resolve the pins alike (Debian's is 23.0).
ARG VARIANT=cpu
COPY requirements/ /tmp/requirements/
RUN --mount=type=secret,id=ca --mount=type=cache,target=/root/.cache/pip \
    set -e; \
    case "$VARIANT" in cpu|gpu) ;; *) echo "error: VARIANT=$VARIANT; use cpu or gpu" >&2; exit 2 ;; esac; \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --disable-pip-version-check -q -c /tmp/requirements/constraints.txt --upgrade pip; \
    /opt/venv/bin/pip install --disable-pip-version-check -q \
      -r "/tmp/requirements/$VARIANT.txt" -r /tmp/requirements/jupyter.txt -c /tmp/requirements/constraints.txt; \
    rm -rf /tmp/requirements

# Any host user runs this image (`-u "$(id -u):$(id -g)"`), whether or not it has an account in
# it. DVC, Git, Keras, Matplotlib and Jupyter write under $HOME, so HOME is a folder every uid can
# write (sticky, like /tmp); USER and LOGNAME give tools that ask a name one. The mounted checkout
# belongs to the host user, not to the container's: safe.directory lets Git read it anyway. The
# fallback identity lets `dvc exp run` commit to its hidden refs; the checkout's own
# user.name/user.email, or GIT_AUTHOR_* passed with -e, come first.
RUN useradd --create-home --uid 1000 --user-group --shell /bin/bash fmnist \
 && mkdir -p /work && chown fmnist:fmnist /work \
 && chmod 1777 /home/fmnist \
 && git config --system safe.directory '*' \
 && git config --system user.name "fashion-mnist container" \
 && git config --system user.email "fmnist@container.invalid"
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/fmnist \
    USER=fmnist \
    LOGNAME=fmnist \
    DVC_NO_ANALYTICS=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY docker/entrypoint.sh /usr/local/bin/entrypoint
# The project as it was built, for running without a checkout (snakemake needs no git); a
# checkout mounted at /work replaces it.
COPY --chown=fmnist:fmnist . /work
WORKDIR /work
USER fmnist
ENTRYPOINT ["/usr/local/bin/entrypoint"]
EXPOSE 8888
CMD ["bash"]
