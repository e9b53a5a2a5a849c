"""Date and number formats of pages, per language (``settings.FORMAT_MODULE_PATH``): what a
language leaves out here comes from Django's own locale formats."""
