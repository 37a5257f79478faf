"""AWS SDK errors as ours, for every AWS adapter (Route 53, RDS): throttling and 5xx are worth a retry, refused
credentials say so, no connection is Unreachable."""
from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from dr.errors import ProviderError, TransientProviderError, Unreachable

TRANSIENT_CODES = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "PriorRequestNotComplete",
                   "ServiceUnavailable", "InternalError", "InternalFailure", "RequestTimeout", "RequestTimeoutException",
                   "TooManyRequestsException"}
CREDENTIAL_CODES = {"AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
                    "SignatureDoesNotMatch", "UnrecognizedClientException", "AuthFailure"}


def aws_error(exc: Exception, what: str, service: str, permissions: str) -> ProviderError:
    """`service` names the API in messages ("Route 53", "RDS"); `permissions` the IAM prefix it needs."""
    if isinstance(exc, NoCredentialsError):
        return ProviderError(f"{what}: no AWS credentials in the standard chain (AWS_PROFILE, environment, web identity, instance role)")
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, message = err.get("Code", "?"), err.get("Message", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        brief = f"{what}: {service} {code}: {message}"
        if code in TRANSIENT_CODES or status == 429 or status >= 500:
            return TransientProviderError(brief)
        if code in CREDENTIAL_CODES:
            return ProviderError(f"{brief} (the AWS credentials were refused or lack {permissions} permissions)")
        return ProviderError(brief)
    if isinstance(exc, BotoConnectionError):
        return Unreachable(f"{what}: the {service} API is unreachable ({type(exc).__name__})")
    if isinstance(exc, BotoCoreError):
        return ProviderError(f"{what}: {exc}")
    return ProviderError(f"{what}: {type(exc).__name__}: {exc}")
