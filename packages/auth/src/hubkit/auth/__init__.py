"""hubkit-auth: authenticators that share one identity contract (``auth_state["hubkit"]``)."""

from .cilogon import HubKitCILogonAuthenticator
from .exceptions import AllocationError, HubKitAuthError, IdentityError, LaunchRejected, UsernameTakenError
from .github import HubKitGitHubAuthenticator
from .identity import AUTH_STATE_KEY, HubKitIdentity, home_name
from .ldap import HubKitLDAPAuthenticator
from .ledger import IdentityLedger
from .lti11 import HubKitLTI11Authenticator
from .lti13 import HubKitLTI13Authenticator
from .multi import HubKitMultiAuthenticator

__all__ = [
    "AUTH_STATE_KEY",
    "AllocationError",
    "HubKitAuthError",
    "HubKitCILogonAuthenticator",
    "HubKitGitHubAuthenticator",
    "HubKitIdentity",
    "HubKitLDAPAuthenticator",
    "HubKitLTI11Authenticator",
    "HubKitLTI13Authenticator",
    "HubKitMultiAuthenticator",
    "IdentityError",
    "IdentityLedger",
    "LaunchRejected",
    "UsernameTakenError",
    "home_name",
]
