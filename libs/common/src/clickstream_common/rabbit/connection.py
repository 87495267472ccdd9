"""From a RabbitMQ URL to pika connection parameters, without ever leaking its password.

The URL carries the password, and pika echoes its input in errors and reprs, so everything that
turns a URL or a pika failure into text goes through here: `mask_url` (in settings, shared with
the schema registry's URL) for the URL itself, `describe` for an error (unwrapped to its root
cause, the password scrubbed out).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

import pika

from clickstream_common.settings import mask_url

CA_FILE_VARIABLE = "RABBITMQ_CA_FILE"


class RabbitUnavailable(Exception):
    """RabbitMQ cannot be reached or refused the connection or topology (password masked)."""


class RabbitRefused(RabbitUnavailable):
    """RabbitMQ answered and said no (credentials, vhost, a clashing topology): a setting to fix,
    not a broker to wait for."""


_REFUSALS = (
    pika.exceptions.ProbableAuthenticationError,
    pika.exceptions.ProbableAccessDeniedError,
    pika.exceptions.AuthenticationError,
)


def is_refusal(exc: BaseException) -> bool:
    """Whether a failed connection was refused by a broker that is up, not a broker away."""
    if isinstance(_root_cause(exc), _REFUSALS):
        return True
    closed = _root_cause(exc)
    return isinstance(closed, pika.exceptions.ConnectionClosedByBroker) and closed.reply_code in (
        403,  # ACCESS_REFUSED
        530,  # NOT_ALLOWED: no such vhost, or no access to it
    )


def secrets_of(url: str) -> tuple[str, ...]:
    """The password in `url`, as written and percent-decoded: either may show up in an error."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return ()
    if not password:
        return ()
    return tuple({password, unquote(password)})


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _root_cause(exc: BaseException) -> BaseException:
    """Unwrap pika's connection-workflow wrappers down to the error that explains the failure."""
    for _ in range(8):
        nested = getattr(exc, "exceptions", None)
        inner: object = None
        if isinstance(nested, list | tuple) and nested:
            inner = nested[-1]
        elif isinstance(getattr(exc, "exception", None), BaseException):
            inner = exc.exception  # type: ignore[attr-defined]
        elif len(exc.args) == 1:
            inner = exc.args[0]
        if not isinstance(inner, BaseException):
            return exc
        exc = inner
    return exc


def describe(exc: BaseException, secrets: Iterable[str]) -> str:
    """One line naming the root cause of `exc`, fit for a log or an error message."""
    root = _root_cause(exc)
    name = type(root).__name__
    if type(root).__module__.startswith("pika"):
        text = repr(root)  # pika's exceptions carry their detail in __repr__, not __str__
    else:
        text = f"{name}: {root}" if str(root).strip() else name
    return scrub(text, secrets)


def parameters(url: str, connection_name: str) -> pika.URLParameters:
    """Parse the URL without ever echoing it back unmasked.

    An amqps:// URL gets pika's default TLS context (system CAs, or SSL_CERT_FILE / SSL_CERT_DIR;
    host name checked against the URL's host), which also trusts the CA in RABBITMQ_CA_FILE if
    that is set, for a broker with a private CA.
    """
    try:
        params = pika.URLParameters(url)
    except Exception as exc:
        raise ValueError(
            f"invalid RabbitMQ URL {mask_url(url)}: {describe(exc, secrets_of(url))}"
        ) from None
    ca_file = os.environ.get(CA_FILE_VARIABLE, "").strip()
    if params.ssl_options is not None and ca_file:
        try:
            params.ssl_options.context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"{CA_FILE_VARIABLE}={ca_file!r} cannot be loaded: {exc}") from None
    params.client_properties = {
        **(params.client_properties or {}),
        "connection_name": connection_name,
    }
    return params
