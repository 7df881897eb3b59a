#!/usr/bin/env bash
# Sets up (packages + build), then runs the default test suite: labels unit and model; `slow`
# tests are excluded (run them with: ctest --test-dir build -L slow).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir build -LE slow --output-on-failure -j "$(nproc)" "$@"
