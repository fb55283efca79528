"""Salesforce (in progress)."""

from connector_adapters.salesforce._config import SalesforceConfig

__all__ = ["SalesforceConfig"]
