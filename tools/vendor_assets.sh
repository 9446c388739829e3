#!/usr/bin/env bash
# Refresh the browser assets bgtasks serves itself (bgtasks/static/), from the npm registry, at pinned versions.
# Run from the repo root: tools/vendor_assets.sh   (needs npm; the files are committed, so users never need it)
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX=htmx.org@2.0.7 SSE=htmx-ext-sse@2.2.4 PICO=@anyblades/pico@2.5.0
out=bgtasks/static tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
for spec in $HTMX $SSE $PICO; do
  name=$(cd "$tmp" && npm pack "$spec" --silent | tail -1)
  mkdir -p "$tmp/${spec//[@\/]/_}" && tar xzf "$tmp/$name" -C "$tmp/${spec//[@\/]/_}"
done
cp "$tmp/${HTMX//[@\/]/_}/package/dist/htmx.min.js" "$out/htmx.min.js"
cp "$tmp/${SSE//[@\/]/_}/package/sse.js" "$out/sse.js"
cp "$tmp/${PICO//[@\/]/_}/package/css/pico.min.css" "$out/pico.min.css"
{ echo "Files in this folder come from the npm registry, unchanged:"
  echo "- htmx.min.js: $HTMX (license 0BSD)"; echo "- sse.js: $SSE (license 0BSD)"; echo "- pico.min.css: $PICO (license MIT)"
  for spec in $HTMX $SSE $PICO; do d="$tmp/${spec//[@\/]/_}/package"
    echo; echo "=== $spec"; cat "$d"/LICENSE* 2>/dev/null || echo "(no license file in the package; see its package.json)"; done
} > "$out/LICENSES.txt"
ls -l "$out"
