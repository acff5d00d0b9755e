"""AWS access: one client factory so tests can point every client at a local server."""
