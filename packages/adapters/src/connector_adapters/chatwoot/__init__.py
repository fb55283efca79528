"""Chatwoot: typed client (managed over HTTP, or mock in memory), webhooks, contact sync.

Needs the ``chatwoot`` extra: ``pip install 'connector-adapters[chatwoot]'``.
"""

try:
    import connector_http as _connector_http  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised in a clean venv by the tests
    raise ImportError(
        "connector_adapters.chatwoot needs the HTTP connector: "
        "pip install 'connector-adapters[chatwoot]'"
    ) from _exc

from connector_adapters._integrations import Integration
from connector_adapters.chatwoot._client import CONTACT_SORTS, CONTACTS_PER_PAGE, ChatwootClient
from connector_adapters.chatwoot._config import ChatwootConfig
from connector_adapters.chatwoot._managed import ManagedChatwoot
from connector_adapters.chatwoot._mock import MockChatwoot
from connector_adapters.chatwoot._mock_server import MockChatwootServer
from connector_adapters.chatwoot._models import (
    ChatwootContact,
    ChatwootContactInbox,
    ChatwootConversation,
    ChatwootInbox,
    ChatwootMessage,
    ChatwootModel,
    ContactPage,
    ConversationPage,
    FilterCondition,
    ToggleStatusResult,
)
from connector_adapters.chatwoot._sync import (
    CONTACTS_STREAM,
    ChatwootContactSource,
    contact_row,
    contacts_table_ddl,
    sync_contacts,
    to_canonical_contact,
)
from connector_adapters.chatwoot._webhooks import (
    ContactWebhook,
    ConversationWebhook,
    MessageWebhook,
    OtherWebhook,
    WebhookEvent,
    WebhookPayloadError,
    WebhookSignatureMismatchError,
    WebhookSignatureMissingError,
    WebhookTimestampError,
    WebhookVerificationError,
    WebhookVerifier,
    compute_signature,
    parse_webhook,
    verify_signature,
)

INTEGRATION = Integration(
    name="chatwoot",
    config_class=ChatwootConfig,
    managed=ManagedChatwoot,
    mock=lambda config: MockChatwoot(account_id=config.account_id or 1),
    env_prefix="CHATWOOT_",
)
"""How ``load_adapters`` builds Chatwoot's clients (entry point ``chatwoot``)."""

__all__ = [
    "CONTACTS_PER_PAGE",
    "CONTACTS_STREAM",
    "CONTACT_SORTS",
    "INTEGRATION",
    "ChatwootClient",
    "ChatwootConfig",
    "ChatwootContact",
    "ChatwootContactInbox",
    "ChatwootContactSource",
    "ChatwootConversation",
    "ChatwootInbox",
    "ChatwootMessage",
    "ChatwootModel",
    "ContactPage",
    "ContactWebhook",
    "ConversationPage",
    "ConversationWebhook",
    "FilterCondition",
    "ManagedChatwoot",
    "MessageWebhook",
    "MockChatwoot",
    "MockChatwootServer",
    "OtherWebhook",
    "ToggleStatusResult",
    "WebhookEvent",
    "WebhookPayloadError",
    "WebhookSignatureMismatchError",
    "WebhookSignatureMissingError",
    "WebhookTimestampError",
    "WebhookVerificationError",
    "WebhookVerifier",
    "compute_signature",
    "contact_row",
    "contacts_table_ddl",
    "parse_webhook",
    "sync_contacts",
    "to_canonical_contact",
    "verify_signature",
]
