#!/usr/bin/env bash
# The test command: every unit, corpus and integration test, the last against a real Dovecot and Postfix on
# loopback (installed from Debian packages when missing; needs root for that, as CI has).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "test.sh: cargo not found; install Rust (https://rustup.rs) first" >&2; exit 1; }
bash scripts/mailstack.sh install

# The shared real-world corpus sits beside the project (../shared/corpus) on developer machines and in CI.
if [[ -z "${POSTDESK_CORPUS:-}" && -d ../shared/corpus ]]; then
  POSTDESK_CORPUS="$(cd ../shared/corpus && pwd)"
  export POSTDESK_CORPUS
fi
echo "test.sh: corpus: ${POSTDESK_CORPUS:-not configured}"

cargo build --all-targets
# mail-parser is built from vendor/ with a faster base64 decoder: its test against the released decoder.
cargo test --manifest-path vendor/mail-parser/Cargo.toml --target-dir target --features serde --lib decoders::base64
# The corpus figures (classification, bounces, reply stripping, threading), printed for the log.
cargo test --test corpus_classify --test corpus_replies -- --nocapture
cargo test --all-targets "$@"
