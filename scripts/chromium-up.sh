#!/usr/bin/env bash
# Installs (Debian packages) headless Chromium and its WebDriver, `chromedriver`, for the
# real-browser test (`tests/browser.rs`). Does nothing when both are there. Prints nothing
# but errors; exits non-zero when they could not be installed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "chromium-up: chromium and chromedriver are missing; installing them needs root or sudo" >&2
    exit 1
  fi
  sudo=(sudo -n)
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 ||
  ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >>"$log" 2>&1; then
  cat "$log" >&2
  echo "chromium-up: installing chromium and chromium-driver failed" >&2
  exit 1
fi
for tool in chromium chromedriver; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "chromium-up: $tool is still missing after installing chromium and chromium-driver" >&2
    exit 1
  fi
done
