"""The project's API wiring: the versioned router that registers every app's viewsets."""
