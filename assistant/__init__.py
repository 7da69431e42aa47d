"""The service: HTTP API, dialogue logic and the ``cpc`` command line."""
