"""Repository-wide pytest setup."""

# pytester drives the connector-testing plugin in a child pytest run.
pytest_plugins = ["pytester"]
