#!/bin/sh
# The main job on the embedded default: installs dependencies, builds, creates a CA on a private
# SoftHSM2 token (./mailca-state), issues a batch of S/MIME certificates into SQLite and prints
# certs/sec, then runs the benchmark against the raw C_Sign rate of the same token.
set -eu
cd "$(dirname "$0")/.."
N=${1:-20000}
sh scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target mailca
[ -f mailca-state/mailca.yaml ] || build/mailca init --dir mailca-state
build/mailca gen-orders --count "$N" mailca-state/orders.msgpack
build/mailca batch --config mailca-state/mailca.yaml mailca-state/orders.msgpack mailca-state/results.msgpack
build/mailca bench --orders "$N"
