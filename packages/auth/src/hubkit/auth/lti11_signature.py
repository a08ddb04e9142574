"""LTI 1.1 launch checks that need no I/O: required parameters, consumer, timestamp window, signature.

The OAuth 1.0a HMAC-SHA1 signature base string is built with oauthlib's RFC 5849 helpers, the same
ones LMSs and ltiauthenticator use; the comparison is constant-time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from oauthlib.oauth1.rfc5849 import signature  # type: ignore[import-untyped]

from .exceptions import LaunchRejected

OAUTH_REQUIRED = (
    "oauth_consumer_key",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "oauth_version",
)
LTI_REQUIRED = ("lti_message_type", "lti_version", "resource_link_id", "user_id")


@dataclass(frozen=True)
class SignedLaunch:
    """A launch as received: the URL the LMS signed, the body and query parameters, and the time now."""

    url: str
    body: Mapping[str, str]
    query: Mapping[str, str]
    now: float


def check_launch(launch: SignedLaunch, consumers: Mapping[str, str], window: float) -> str:
    """Validate everything but the nonce; returns the consumer key."""
    params = {**launch.query, **launch.body}
    for name in OAUTH_REQUIRED + LTI_REQUIRED:
        if not params.get(name):
            raise LaunchRejected(f"The launch request lacks the required parameter {name}.")
    consumer = params["oauth_consumer_key"]
    if consumer not in consumers:
        raise LaunchRejected("The launch comes from an LMS (consumer key) this hub does not know.", 401)
    if params["oauth_signature_method"] != "HMAC-SHA1" or params["oauth_version"] != "1.0":
        raise LaunchRejected("The launch must be signed with OAuth 1.0 HMAC-SHA1.", 401)
    if params["lti_message_type"] != "basic-lti-launch-request":
        raise LaunchRejected("Only basic-lti-launch-request messages can log in to this hub.")
    try:
        timestamp = int(params["oauth_timestamp"])
    except ValueError as e:
        raise LaunchRejected("The launch's oauth_timestamp is not a number.", 401) from e
    skew = launch.now - timestamp
    if abs(skew) > window:
        when = "old" if skew > 0 else "in the future"
        raise LaunchRejected(
            f"The launch was signed {abs(int(skew))} s {'ago' if skew > 0 else 'ahead'}, too {when}; "
            "check the LMS's clock and launch again.",
            401,
        )
    base = signature.signature_base_string(
        "POST",
        signature.base_string_uri(launch.url),
        signature.normalize_parameters(
            [(k, v) for k, v in {**launch.query, **launch.body}.items() if k != "oauth_signature"]
        ),
    )
    expected = signature.sign_hmac_sha1(base, consumers[consumer], "")
    if not hmac.compare_digest(str(expected), params["oauth_signature"]):
        raise LaunchRejected("The launch's signature is not valid for its consumer key.", 401)
    return consumer
