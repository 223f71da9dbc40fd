#!/usr/bin/env bash
# Builds target/debian/postdesk_*.deb with cargo-deb (installed from crates.io when missing): first the man pages
# and shell completions generated from the clap definitions (examples/gen_docs.rs) into target/assets.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
rm -rf target/assets
cargo run --quiet --example gen_docs -- target/assets
cp packaging/man/postdesk.toml.5 target/assets/
# Man pages are installed compressed (Debian policy 12.1); -n keeps the build reproducible.
gzip -9n target/assets/postdesk.8 target/assets/postdesk.toml.5
cargo deb "$@"
ls -l target/debian/*.deb
