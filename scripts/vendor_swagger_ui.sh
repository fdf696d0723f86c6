#!/usr/bin/env bash
# Refresh the Swagger UI files the scoring server ships for GET /docs (offline, no CDN).
#
#   bash scripts/vendor_swagger_ui.sh [VERSION]     default: the version in VERSION
#
# Takes them from the npm registry's swagger-ui-dist package (Apache-2.0) with
# `npm pack`, and copies only what the page uses into nbdeploy/server/static/swagger-ui.
# Swagger UI 5 reads OpenAPI 3.1 (the server's /openapi.json); 4.x could not.
set -euo pipefail
DEST="$(cd "$(dirname "$0")/.." && pwd)/nbdeploy/server/static/swagger-ui"
VERSION=${1:-$(cat "$DEST/VERSION")}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null && tar xzf swagger-ui-dist-*.tgz)
for f in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css \
         favicon-16x16.png favicon-32x32.png LICENSE NOTICE; do
    cp "$WORK/package/$f" "$DEST/$f"
done
# Their last lines point at source maps that are not shipped.
sed -i "/sourceMappingURL=/d" "$DEST/swagger-ui-bundle.js" "$DEST/swagger-ui.css"
echo "$VERSION" > "$DEST/VERSION"
echo "Swagger UI $VERSION copied to $DEST"
