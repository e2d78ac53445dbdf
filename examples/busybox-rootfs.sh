#!/bin/sh
# Prints a busybox root file system as a tar on stdout, made from the host's busybox-static
# (/usr/bin/busybox), so the examples need no registry:
#   sh examples/busybox-rootfs.sh | tsd-store import -c 'CMD ["sh"]' localhost/busybox:latest
set -eu
BUSYBOX=${BUSYBOX:-/usr/bin/busybox}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/root" "$dir/home" "$dir/var/www"
cp "$BUSYBOX" "$dir/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
chmod 1777 "$dir/tmp"
chmod 700 "$dir/root"
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$dir" -cf - .
