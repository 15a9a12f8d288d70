"""The API documentation pages, served whole by Hermes: no page loads anything from another site.

Swagger UI and Redoc come from Python packages that ship their built files
(`star-openapi-swagger`, `star-openapi-redoc`); Hermes serves those files under
`/schema/assets/` and points Litestar's render plugins at them. The OpenAPI document
itself is `/schema/openapi.json`.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Annotated

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.params import PathParameter

ASSETS_PATH = "/schema/assets"

# name served -> (package, file inside it, media type)
_ASSETS: dict[str, tuple[str, str, str]] = {
    "swagger-ui-bundle.js": ("star_openapi_swagger", "templates/swagger/js/swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui-standalone-preset.js": (
        "star_openapi_swagger",
        "templates/swagger/js/swagger-ui-standalone-preset.js",
        "text/javascript",
    ),
    "swagger-ui.css": ("star_openapi_swagger", "templates/swagger/css/swagger-ui.css", "text/css"),
    "redoc.standalone.js": ("star_openapi_redoc", "templates/redoc/js/redoc.standalone.js", "text/javascript"),
}
# Litestar's plugins put this into <head> as given. The favicon would otherwise come from a CDN (an empty
# data URL also stops the browser's own /favicon.ico request); the policy keeps everything the pages load
# on Hermes, including the logo Redoc's bundle would fetch from its CDN.
_HEAD = (
    "<link rel='icon' href='data:,'>"
    "<meta http-equiv='Content-Security-Policy' content=\"default-src 'self'; "
    "script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'\">"
)


@cache
def _read(name: str) -> bytes:
    package, path, _ = _ASSETS[name]
    return files(package).joinpath(path).read_bytes()


@get(f"{ASSETS_PATH}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def api_docs_asset(name: Annotated[str, PathParameter()]) -> Response[bytes]:
    """One file of Swagger UI or Redoc; they change only with the package, so browsers may keep them a day."""
    if name not in _ASSETS:
        raise NotFoundException()
    return Response(
        _read(name),
        media_type=_ASSETS[name][2],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """`/schema/openapi.json`, `/schema/swagger` (also `/schema`) and `/schema/redoc`, all from Hermes."""
    return [
        SwaggerRenderPlugin(
            js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            css_url=f"{ASSETS_PATH}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
            path=["/", "/swagger"],
            favicon=_HEAD,
        ),
        RedocRenderPlugin(js_url=f"{ASSETS_PATH}/redoc.standalone.js", google_fonts=False, favicon=_HEAD),
        JsonRenderPlugin(),
    ]
