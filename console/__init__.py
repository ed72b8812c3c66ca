"""The operator console (``/console``): server-rendered pages for staff,
calling the same domain code as the API."""

# One module per area, each adding its pages to ``web.blp``.
PAGES = ("session", "overview", "campaigns", "users", "policies", "stats", "staff")


def register(app):
    """Add the console's pages to ``app`` (one blueprint at ``/console``)."""
    from importlib import import_module

    from console import web

    for name in PAGES:
        import_module(f"console.{name}")
    app.register_blueprint(web.blp)
