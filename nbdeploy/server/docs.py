"""The Swagger UI page, served from assets shipped in the wheel — no CDN, no internet.

``GET /docs`` is a small HTML page that loads Swagger UI's script and stylesheet from
``GET /docs/static/<file>`` and points it at ``openapi.json``. The files are Swagger UI
5 (``nbdeploy/server/static/swagger-ui``, from the npm package ``swagger-ui-dist``;
``scripts/vendor_swagger_ui.sh`` refreshes them): it reads the OpenAPI 3.1 document
the server publishes, which the 4.x of the ``swagger-ui-bundle`` wheel could not
("Unable to render this definition"). Every URL in the page is relative, so the page
also works behind a proxy that serves the service under a path prefix (JupyterHub,
Binder, nbdeploy's Jupyter proxy). Everything interpolated into the HTML is escaped.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from nbdeploy.server.errors import error_response

__all__ = [
    "ASSETS_DIR",
    "STATIC_FILES",
    "docs_page",
    "render_docs_html",
    "static_asset",
    "swagger_ui_version",
]

#: The Swagger UI files the page uses, and their media types.
STATIC_FILES: dict[str, str] = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

#: Where the shipped Swagger UI files are.
ASSETS_DIR = Path(__file__).resolve().parent / "static" / "swagger-ui"


def swagger_ui_version() -> str:
    """The version of the shipped Swagger UI.

    Examples
    --------
    >>> int(swagger_ui_version().split(".")[0]) >= 5
    True
    """
    return (ASSETS_DIR / "VERSION").read_text().strip()


def _script_json(value: object) -> str:
    """``value`` as JSON safe to embed inside a ``<script>`` element."""
    return (
        json.dumps(value)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def render_docs_html(title: str, openapi_url: str = "openapi.json") -> str:
    """The Swagger UI page for a service called ``title``.

    Examples
    --------
    >>> page = render_docs_html("<my model>")
    >>> "&lt;my model&gt;" in page and "<my model>" not in page
    True
    """
    safe_title = html.escape(title)
    config = _script_json(
        {
            "url": openapi_url,
            "dom_id": "#swagger-ui",
            "deepLinking": True,
            "validatorUrl": None,
        }
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{safe_title} - Swagger UI</title>
<link rel="stylesheet" href="docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/static/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/static/swagger-ui-bundle.js"></script>
<script>
// Swagger UI 5 styles html.dark-mode: follow the browser's (and JupyterLab's) dark theme.
if (window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches) {{
  document.documentElement.classList.add("dark-mode");
}}
window.onload = function () {{
  var config = {config};
  config.presets = [SwaggerUIBundle.presets.apis];
  config.layout = "BaseLayout";
  window.ui = SwaggerUIBundle(config);
}};
</script>
</body>
</html>
"""


def docs_page(title: str) -> Response:
    """``GET /docs``."""
    return HTMLResponse(render_docs_html(title))


async def static_asset(request: Request) -> Response:
    """``GET /docs/static/{name}``: one of :data:`STATIC_FILES`, nothing else."""
    name = request.path_params["name"]
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return error_response(
            404, f"no such Swagger UI asset {name!r}; known: {', '.join(STATIC_FILES)}"
        )
    return FileResponse(
        ASSETS_DIR / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )
