#!/bin/sh
# The image's entrypoint: name the user that `docker run -u UID:GID` made up, and refuse to run
# DVC where no checkout is mounted, with one line that says what to do.
set -e
# A uid with no account in the image: tools that ask for a name (getpass, Jupyter) get one.
if ! name=$(id -un 2>/dev/null); then
  name="user$(id -u)"
fi
export USER="$name" LOGNAME="$name"
# DVC needs the checkout's .git (experiments, `dvc metrics diff`); the image's copy has none.
case "${1:-}" in
  dvc)
    if [ ! -e /work/.git ] && [ "$PWD" = /work ]; then
      echo "error: no checkout is mounted at /work; run from your checkout: docker run --rm -v \"\$PWD:/work\" -u \"\$(id -u):\$(id -g)\" IMAGE $*" >&2
      exit 2
    fi ;;
esac
exec "$@"
