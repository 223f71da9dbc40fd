#!/usr/bin/env bash
# Builds target/debian/postdesk_*.deb with cargo-deb (installed from crates.io when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
cargo deb
ls -l target/debian/*.deb
