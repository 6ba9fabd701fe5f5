"""`/static/...`: the pages' CSS and JavaScript, and the vendored uPlot chart library.

Read from the installed package (the wheel ships static/, see pyproject's package-data),
once, when the server starts: the sidecar often has no internet, so nothing comes from a
CDN. uPlot is MIT-licensed; its licence is served beside it (static/uPlot.LICENSE).
"""

from __future__ import annotations

from importlib import resources

from agent.server.pages.render import Page

_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
}


def load() -> dict[str, Page]:
    """Every static file by its URL path (`/static/uPlot.iife.min.js`)."""
    files: dict[str, Page] = {}
    folder = resources.files("agent.server.pages") / "static"
    for entry in folder.iterdir():
        suffix = next((s for s in _TYPES if entry.name.endswith(s)), None)
        if suffix is None or not entry.is_file():
            continue
        files[f"/static/{entry.name}"] = Page(
            entry.read_bytes(), content_type=_TYPES[suffix], cache_control="max-age=3600"
        )
    return files
