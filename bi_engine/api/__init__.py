"""The HTTP API: ``create_app(settings)`` is the composition root, ``routes`` the route table."""
