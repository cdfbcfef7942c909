#!/bin/sh
# Generates the TSIG key shared by BIND9 and the FNAA host.
#
#   sudo ./generate-key.sh                 # writes /etc/bind/fnaa-update.key
#   sudo ./generate-key.sh /tmp/key fnaa-update
#
# Copy the same file to the FNAA host (for example /etc/fnaa/fnaa-update.key,
# readable by the fnaa user only) and point [dns.registry.tsig] key_file to it.
set -eu

key_file="${1:-/etc/bind/fnaa-update.key}"
key_name="${2:-fnaa-update}"

if ! command -v tsig-keygen >/dev/null 2>&1 && [ ! -x /usr/sbin/tsig-keygen ]; then
    echo "tsig-keygen not found: apt-get install bind9" >&2
    exit 1
fi
keygen="$(command -v tsig-keygen || echo /usr/sbin/tsig-keygen)"

umask 077
"$keygen" -a hmac-sha256 "$key_name" > "$key_file"
# named runs as the "bind" user on Debian.
if getent group bind >/dev/null 2>&1; then
    chgrp bind "$key_file" && chmod 640 "$key_file"
fi
echo "wrote $key_file (key \"$key_name\", hmac-sha256)"
