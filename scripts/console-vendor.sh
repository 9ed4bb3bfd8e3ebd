#!/usr/bin/env bash
# Vendors the web console's front-end packages from the npm registry, as pinned by
# adapters/console/package-lock.json, into adapters/console/static/vendor, and records their
# checksums in adapters/console/vendor.sha256 (which the console's tests check). The files
# are committed: building or running the binary needs neither npm nor a network.
set -euo pipefail
cd "$(dirname "$0")/../adapters/console"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp package.json package-lock.json "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --silent)
mkdir -p static/vendor
cp "$work/node_modules/uplot/dist/uPlot.iife.min.js" "$work/node_modules/uplot/dist/uPlot.min.css" static/vendor/
cp "$work/node_modules/uplot/LICENSE" static/vendor/uPlot.LICENSE
sha256sum static/vendor/* > vendor.sha256
echo "vendored uplot $(node -p "require('$work/node_modules/uplot/package.json').version") into adapters/console/static/vendor"
