#!/usr/bin/env bash
# Build the NiiVue bundle that brainmets.figures.viewer inlines into its pages (package data, committed).
#
# In a temporary folder: npm installs the pinned @niivue/niivue and esbuild, esbuild bundles NiiVue into one
# minified IIFE that defines the global `niivue` (niivue.Niivue, niivue.NVImage, ...), and the result, NiiVue's
# licence (BSD-2-Clause, with the licences of the packages bundled with it) and a README naming the version, the
# command and the sha256 are written to src/brainmets/data/viewer/. Needs node and npm (the npm registry only).
# Usage: bash tools/build_niivue_bundle.sh [--update]
set -euo pipefail

NIIVUE_VERSION=0.69.0
ESBUILD_VERSION=0.28.2

here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/src/brainmets/data/viewer"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# tools/niivue_bundle/ keeps the package.json and package-lock.json of the last build, so that NiiVue's own
# dependencies are the same ones again (npm ci); with --update (or no lock file) they are resolved anew and saved.
lock="$here/tools/niivue_bundle"
cd "$work"
if [[ "${1:-}" != "--update" && -f "$lock/package-lock.json" ]]; then
    cp "$lock/package.json" "$lock/package-lock.json" .
    npm ci --no-audit --no-fund >/dev/null
else
    npm init -y >/dev/null
    npm pkg set name=brainmets-niivue-bundle && npm pkg set private=true --json
    npm install --no-audit --no-fund --save-exact "@niivue/niivue@$NIIVUE_VERSION" "esbuild@$ESBUILD_VERSION" >/dev/null
    mkdir -p "$lock" && cp package.json package-lock.json "$lock/"
fi
echo "export * from '@niivue/niivue'" >entry.mjs
npx esbuild entry.mjs --bundle --minify --format=iife --global-name=niivue --target=es2020 \
    --legal-comments=none --log-level=warning --metafile=meta.json --outfile=niivue.min.js
# shipped gzipped (0.8 MB instead of 2.3 MB; no timestamp, so the same build gives the same file)
gzip -9 -n -c niivue.min.js >"$out/niivue.min.js.gz"

# NiiVue's licence. The npm tarball ships none, so the text is the upstream repository's LICENSE (BSD-2-Clause,
# "Copyright (c) 2021, Niivue"); then the licences of the other packages esbuild put into the bundle.
{
    cat <<'LICENSE'
NiiVue (@niivue/niivue), bundled in niivue.min.js:

BSD 2-Clause License

Copyright (c) 2021, Niivue
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
LICENSE
    node -e '
        const fs = require("fs"), path = require("path");
        const inputs = Object.keys(JSON.parse(fs.readFileSync("meta.json")).inputs);
        const pkgs = new Set();
        for (const f of inputs) {
            const m = f.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
            if (m && m[1] !== "@niivue/niivue") pkgs.add(m[1]);
        }
        for (const p of [...pkgs].sort()) {
            const dir = path.join("node_modules", p);
            const meta = JSON.parse(fs.readFileSync(path.join(dir, "package.json")));
            const lic = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
            console.log(`\n\n---- ${p} ${meta.version} (${meta.license}), bundled in niivue.min.js ----\n`);
            console.log(lic ? fs.readFileSync(path.join(dir, lic), "utf8").trim() : `licence: ${meta.license} (no licence file in the package)`);
        }'
} >"$out/NIIVUE_LICENSE"

sha=$(sha256sum niivue.min.js | cut -d' ' -f1)
size=$(stat -c %s niivue.min.js)
gz_size=$(stat -c %s "$out/niivue.min.js.gz")
cat >"$out/README.md" <<README
# NiiVue bundle for the lesion viewer page

\`niivue.min.js.gz\` is, gzipped, [NiiVue](https://github.com/niivue/niivue) \`@niivue/niivue@$NIIVUE_VERSION\` (BSD-2-Clause,
see \`NIIVUE_LICENSE\`, which also holds the licences of the packages bundled with it) bundled by esbuild
$ESBUILD_VERSION into one minified IIFE that defines the global \`niivue\`. \`brainmets.figures.viewer\` inlines it
into each page, so the page fetches nothing when it is opened.

- built by: \`bash tools/build_niivue_bundle.sh\` (npm install @niivue/niivue@$NIIVUE_VERSION esbuild@$ESBUILD_VERSION;
  \`esbuild entry.mjs --bundle --minify --format=iife --global-name=niivue --target=es2020 --legal-comments=none\`,
  entry \`export * from '@niivue/niivue'\`); NiiVue's own dependencies as locked in
  \`tools/niivue_bundle/package-lock.json\` (\`npm ci\`; \`--update\` resolves them anew)
- size: $size bytes ($gz_size gzipped)
- sha256 (of the bundle, unzipped): \`$sha\`
README
echo "wrote $out/niivue.min.js.gz ($size bytes unzipped, $gz_size gzipped, sha256 $sha)"
