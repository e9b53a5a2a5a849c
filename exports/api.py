"""REST API for sponsor safety exports."""


def register(router) -> None:
    """Export endpoints are registered here as the export models land."""
