"""connector-http: an async HTTP connector on httpx.

Auth (basic, bearer, API keys, OAuth2 client credentials / refresh token / JWT bearer),
retries of idempotent requests, rate limiting, a circuit breaker, typed errors, bounded
responses (size and time), pagination helpers and a GraphQL client. Import from here;
``_modules`` are private.
"""

from connector_http._auth import TokenRotatedCallback
from connector_http._auth_config import (
    ApiKeyAuthConfig,
    AuthConfig,
    BasicAuthConfig,
    BearerAuthConfig,
    NoAuthConfig,
    OAuth2ClientCredentialsConfig,
    OAuth2JwtBearerConfig,
    OAuth2RefreshTokenConfig,
)
from connector_http._config import VERSION, HttpConfig, HttpTimeouts, PoolLimits, TlsSettings
from connector_http._connector import IDEMPOTENT_METHODS, HttpConnector, RequestOptions
from connector_http._errors import (
    GraphQLError,
    PaginationLoopError,
    ResponseTooLargeError,
    parse_retry_after,
)
from connector_http._graphql import GraphQLConnector
from connector_http._response import HttpResponse, HttpStreamResponse

__version__ = VERSION

__all__ = [
    "IDEMPOTENT_METHODS",
    "ApiKeyAuthConfig",
    "AuthConfig",
    "BasicAuthConfig",
    "BearerAuthConfig",
    "GraphQLConnector",
    "GraphQLError",
    "HttpConfig",
    "HttpConnector",
    "HttpResponse",
    "HttpStreamResponse",
    "HttpTimeouts",
    "NoAuthConfig",
    "OAuth2ClientCredentialsConfig",
    "OAuth2JwtBearerConfig",
    "OAuth2RefreshTokenConfig",
    "PaginationLoopError",
    "PoolLimits",
    "RequestOptions",
    "ResponseTooLargeError",
    "TlsSettings",
    "TokenRotatedCallback",
    "__version__",
    "parse_retry_after",
]
