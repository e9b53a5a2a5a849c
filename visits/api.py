"""REST API for visits and their forms."""


def register(router) -> None:
    """Visit endpoints are registered here as the visit models land."""
