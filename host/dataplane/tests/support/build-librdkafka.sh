#!/bin/sh
# Builds a shared librdkafka (the version rdkafka-sys bundles) for `kcat`.
#
# Debian's kcat links librdkafka 2.0.2, which cannot parse the ApiVersions
# response of tansu 0.6 ("Read underflow"). The outsider test runs kcat with
# LD_LIBRARY_PATH pointing at this newer, ABI-compatible librdkafka.so.1.
#
# Usage: build-librdkafka.sh [OUT_DIR]   (default: $CARGO_TARGET_DIR/librdkafka-shared
#                                          or target/librdkafka-shared)
# Needs: cmake, a C compiler, libcurl4-openssl-dev headers, and the rdkafka-sys
# sources in the cargo registry (any `cargo build -p fnaa-dataplane` fetches them).
set -eu
out="${1:-${CARGO_TARGET_DIR:-$(dirname "$0")/../../../../target}/librdkafka-shared}"
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-4.10.0+2.12.1/librdkafka 2>/dev/null | head -n1)
[ -n "$src" ] || { echo "rdkafka-sys 4.10.0 sources not found; run cargo build -p fnaa-dataplane first" >&2; exit 1; }
if [ -f "$out/lib/librdkafka.so.1" ]; then echo "$out/lib"; exit 0; fi
mkdir -p "$out/build"
cmake -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DRDKAFKA_BUILD_STATIC=0 \
  -DRDKAFKA_BUILD_EXAMPLES=0 -DRDKAFKA_BUILD_TESTS=0 -DWITH_SSL=0 -DWITH_SASL=0 \
  -DWITH_ZSTD=0 -DWITH_CURL=0 -DENABLE_LZ4_EXT=0 -DCMAKE_INSTALL_PREFIX="$out" \
  -DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >/dev/null
cmake --build "$out/build" --target install -j "$(nproc)" >/dev/null
echo "$out/lib"
