"""REST API for queries, source data verification, signatures and locks."""


def register(router) -> None:
    """Data-management endpoints are registered here as its models land."""
