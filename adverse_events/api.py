"""REST API for adverse events."""


def register(router) -> None:
    """Adverse-event endpoints are registered here as the adverse-event models land."""
