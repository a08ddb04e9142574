"""HubKit hub configuration, step 2: the authenticator named in the settings.

Its options (client ids, LDAP server, LTI issuers, ...) are plain traitlets configuration under
``jupyterhub.hub.config.<AuthenticatorClass>``; secrets come from z2jh's hub.extraEnv / existing Secrets.
"""

c = globals()["c"]
_settings = globals()["HUBKIT_SETTINGS"]

_AUTHENTICATORS = {
    "github": "hubkit-github",
    "cilogon": "hubkit-cilogon",
    "ldap": "hubkit-ldap",
    "lti13": "hubkit-lti13",
    "lti11": "hubkit-lti11",
    "multi": "hubkit-multi",
}
_choice = _settings.get("authenticator", "none")
if _choice != "none":
    if _choice not in _AUTHENTICATORS:
        known = ", ".join(sorted(_AUTHENTICATORS))
        raise ValueError(f"HubKit: unknown authenticator {_choice!r}; use one of {known} or none")
    c.JupyterHub.authenticator_class = _AUTHENTICATORS[_choice]
