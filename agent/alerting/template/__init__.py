"""Go templates, split as Go's text/template: `parse` (lexer, parse tree, load-time checks),
`exec` (rendering; `Template` and `TemplateError` for callers) and `funcs` (the functions
templates call). One engine, two dialects: Prometheus' alert label and annotation
templates (the default), and Alertmanager's notification templates, which
agent/notify/template.py builds on. Go's number and value formatting is
`agent.support.goformat`."""
