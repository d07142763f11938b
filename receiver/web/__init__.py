"""The HTTP layer: the ASGI application, ingest, the admin API and dashboard, and the server."""
