"""Lambda handlers served by the REST API."""
