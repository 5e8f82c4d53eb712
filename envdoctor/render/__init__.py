"""Renderers: a report in, text out. One module per format."""

FORMATS = ("text", "json", "markdown")
