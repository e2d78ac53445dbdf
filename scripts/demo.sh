#!/usr/bin/env bash
# The README's demo: install what is missing, make a base image from the host's busybox-static
# (no registry needed), then build and run examples/hello through the pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/bin:$PATH"

echo '$ sh examples/busybox-rootfs.sh | tsd-store import -c '\''CMD ["sh"]'\'' localhost/busybox:latest' >&2
sh examples/busybox-rootfs.sh | tsd-store import -c 'CMD ["sh"]' localhost/busybox:latest
echo '$ tsd-store ls' >&2
tsd-store ls
echo '$ tsd-ctx examples/hello | tsd-build -t localhost/hello | tsd-run --rm' >&2
tsd-ctx examples/hello | tsd-build -t localhost/hello | tsd-run --rm
