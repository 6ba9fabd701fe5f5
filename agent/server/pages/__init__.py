"""Web pages for people, served by the agent itself: `/`, `/alerts`, `/rules`, `/graph`,
`/config`, and the static files they use (`/static/...`, the vendored uPlot chart among
them). One module per page; each has `page(handlers, query) -> Page`. routes.py maps the
paths to them with the same auth as `/metrics`. `/metrics` stays the machine interface.

Not here yet: `/silences` (it comes with silences; render.NAV marks where its entry goes,
and alerts.html where an alert's silenced/inhibited marks go).
"""
