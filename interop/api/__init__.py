"""HTTP API routers; the application and its authentication are assembled by the app factory."""
