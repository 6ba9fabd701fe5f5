"""Alert label and annotation templates, split as Go's text/template: `parse` (lexer,
parse tree, load-time checks), `exec` (rendering; `Template` and `TemplateError` for
callers) and `funcs` (the functions templates call). Go's number and value formatting
is `agent.support.goformat`."""
