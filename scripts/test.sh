#!/bin/sh
# The test command: installs dependencies, builds with -Werror, runs every test (unit and
# SoftHSM2-backed integration), then again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAILCA_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")
if [ "${MAILCA_SKIP_SANITIZE:-0}" != "1" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMAILCA_WERROR=ON -DMAILCA_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  # fast_unwind_on_malloc=0: full stacks through libcrypto (no frame pointers), so the
  # suppressions in tests/lsan.supp match only leaks inside the PKCS#11 module.
  # MAILCA_TEST_SCALE=10: the integration tests issue a tenth of their certificates here.
  (cd build-asan && MAILCA_TEST_SCALE=10 ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0 \
    LSAN_OPTIONS=suppressions="$PWD/../tests/lsan.supp" ctest --output-on-failure -j"$jobs")
fi
