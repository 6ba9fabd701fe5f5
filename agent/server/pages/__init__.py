"""Web pages for people, served by the agent itself: `/`, `/alerts`, `/rules`, `/graph`,
`/silences`, `/config`, and the static files they use (`/static/...`, the vendored uPlot
chart library among them). One module per page; each has `page(handlers, query) -> Page`
(`/silences` also takes whether writes are allowed). routes.py maps the paths to them
with the same auth as `/metrics`. `/metrics` stays the machine interface.
"""
