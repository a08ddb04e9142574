"""An honest LMS on loopback: real LTI 1.1 signed launches and LTI 1.3 OIDC launches with its own key.

- LTI 1.1: launch parameters signed with OAuth 1.0a HMAC-SHA1 by oauthlib's client (body signature),
  exactly as Canvas or Moodle sign them; tests can also ask for forged/stale variants.
- LTI 1.3: the platform side of OIDC third-party login: the page POSTs a login initiation to the tool,
  ``/lti13/authorize`` checks the tool's auth request (client id, registered redirect URI, nonce, state)
  and answers with an auto-submitting form carrying an RS256 ``id_token`` signed with the simulator's own
  RSA key, published at ``/jwks``.
- ``/`` is a page with buttons "launch as student / instructor of a sample course, LTI 1.1 and 1.3".

``start_dev_lms`` and ``dev_hub_config`` are what ``make dev`` uses.
"""

from __future__ import annotations

import html
import json
import secrets
import ssl
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from oauthlib.oauth1 import Client  # type: ignore[import-untyped]

from .lms_services import AGS_CLAIM, LINEITEM_SCOPE, NRPS_CLAIM, SCORE_SCOPE, AdvantageServices, member
from .loopback_http import LoopbackHTTPServer

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
ROLES_11 = {
    "student": "Learner",
    "instructor": "Instructor",
    "ta": "urn:lti:role:ims/lis/TeachingAssistant",
}
ROLES_13 = {
    "student": "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
    "instructor": "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
    "ta": "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
}


@dataclass(frozen=True)
class Course:
    context_id: str = "sample-course-101"
    title: str = "Sample Course 101"
    label: str = "SC101"


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str
    role: str = "student"  # student | instructor | ta

    @property
    def email(self) -> str:
        return f"{self.user_id}@lms.hubkit.test"


SAMPLE_PEOPLE = {
    "student": Person("student-0001", "Sam Student", "student"),
    "instructor": Person("instructor-0001", "Ida Instructor", "instructor"),
}


@dataclass
class LMSConfig:
    """Where the tool (the hub) is and how it is registered in this LMS."""

    hub_url: str
    consumer_key: str = "hubkit-test"
    consumer_secret: str = "hubkit-test-secret"
    lti11_launch_path: str = "/hub/lti/launch"
    lti13_login_path: str = "/hub/lti13/oauth_login"
    lti13_redirect_path: str = "/hub/lti13/oauth_callback"
    client_id: str = "hubkit-client-1"
    deployment_id: str = "deployment-1"
    custom: dict[str, str] = field(default_factory=dict)
    tool_jwks_url: str = ""  # the tool's public keys (LTI Advantage): client assertions are checked with them

    @property
    def lti11_launch_url(self) -> str:
        return self.hub_url.rstrip("/") + self.lti11_launch_path

    @property
    def lti13_login_url(self) -> str:
        return self.hub_url.rstrip("/") + self.lti13_login_path

    @property
    def lti13_redirect_url(self) -> str:
        return self.hub_url.rstrip("/") + self.lti13_redirect_path


@dataclass(frozen=True)
class Launch11Options:
    """Knobs for hostile LTI 1.1 launches; the defaults give an honest, freshly signed launch."""

    timestamp: int | None = None
    nonce: str | None = None
    secret: str | None = None
    consumer_key: str | None = None
    url: str | None = None


class LMSSimulator:
    """One simulated LMS platform serving HTTP on 127.0.0.1 in a background thread."""

    def __init__(
        self,
        config: LMSConfig,
        port: int = 0,
        course: Course | None = None,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``host`` names loopback in the URLs the browser sees (``lms.test`` with a resolver rule);
        with ``tls`` the simulator serves https."""
        self.config = config
        self.course = course or Course()
        self.host = host
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "lms-" + secrets.token_hex(4)
        self._http = LoopbackHTTPServer(_handler_for(self), "lms-simulator", port, tls)
        self.issued: list[dict[str, Any]] = []
        self.jwks_requests = 0
        self.services = AdvantageServices(self)

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def url(self) -> str:
        """Where browsers reach the LMS (and its issuer id)."""
        return self.site_url(self.host)

    def site_url(self, host: str) -> str:
        """The simulator under another name for loopback (another site to the browser)."""
        return f"{self._http.scheme}://{host}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def jwks_url(self) -> str:
        """Where the hub fetches keys: always the loopback address, which the hub can resolve."""
        return f"{self._http.url}/jwks"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/lti13/authorize"

    @property
    def backend_url(self) -> str:
        """The simulator as the hub reaches it server to server (loopback address)."""
        return self._http.url

    @property
    def token_url(self) -> str:
        return f"{self.backend_url}/lti13/token"

    def start(self) -> LMSSimulator:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> LMSSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- LTI 1.1 ----------------------------------------------------------------------------------

    def lti11_params(
        self,
        person: Person,
        course: Course | None = None,
        custom: dict[str, str] | None = None,
        options: Launch11Options | None = None,
        extra: dict[str, str] | None = None,
    ) -> dict[str, str]:
        """The signed form fields of one LTI 1.1 launch of ``person`` into ``course``."""
        course, opts = course or self.course, options or Launch11Options()
        params = {
            "lti_message_type": "basic-lti-launch-request",
            "lti_version": "LTI-1p0",
            "resource_link_id": f"{course.context_id}-link-1",
            "resource_link_title": "Open JupyterHub",
            "context_id": course.context_id,
            "context_title": course.title,
            "context_label": course.label,
            "user_id": person.user_id,
            "roles": ROLES_11.get(person.role, person.role),
            "lis_person_name_full": person.name,
            "lis_person_contact_email_primary": person.email,
            "tool_consumer_info_product_family_code": "hubkit-lms-simulator",
            "launch_presentation_document_target": "iframe",
        }
        params |= {f"custom_{k}": v for k, v in {**self.config.custom, **(custom or {})}.items()}
        params |= extra or {}
        client = Client(
            opts.consumer_key or self.config.consumer_key,
            client_secret=opts.secret or self.config.consumer_secret,
            signature_type="BODY",
            nonce=opts.nonce or uuid.uuid4().hex,
            timestamp=str(opts.timestamp if opts.timestamp is not None else int(time.time())),
        )
        _, _, body = client.sign(
            opts.url or self.config.lti11_launch_url,
            http_method="POST",
            body=urlencode(params),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        return dict(parse_qsl(str(body), keep_blank_values=True))

    # --- LTI 1.3 ----------------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [jwk | {"kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def id_token_claims(self, person: Person, nonce: str, course: Course | None = None) -> dict[str, Any]:
        course, now = course or self.course, int(time.time())
        return {
            "iss": self.issuer,
            "aud": self.config.client_id,
            "azp": self.config.client_id,
            "sub": person.user_id,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "name": person.name,
            "email": person.email,
            LTI + "message_type": "LtiResourceLinkRequest",
            LTI + "version": "1.3.0",
            LTI + "deployment_id": self.config.deployment_id,
            LTI + "target_link_uri": self.config.hub_url.rstrip("/") + "/hub/",
            LTI + "resource_link": {"id": f"{course.context_id}-link-1", "title": "Open JupyterHub"},
            LTI + "roles": [ROLES_13.get(person.role, person.role)],
            LTI + "context": {"id": course.context_id, "label": course.label, "title": course.title},
            LTI + "custom": dict(self.config.custom),
            AGS_CLAIM: {
                "scope": [LINEITEM_SCOPE, SCORE_SCOPE],
                "lineitems": self.services.lineitems_url(course.context_id),
            },
            NRPS_CLAIM: {
                "context_memberships_url": self.services.memberships_url(course.context_id),
                "service_versions": ["2.0"],
            },
        }

    def sign_id_token(
        self, claims: dict[str, Any], key: rsa.RSAPrivateKey | None = None, kid: str | None = None
    ) -> str:
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    def login_initiation(self, person: Person, message: str = "") -> dict[str, str]:
        """The fields of the third-party login initiation the LMS sends to the tool. ``message``:
        ``"deeplink"`` for a deep linking request, ``"link=<n>"`` for the course's n-th deep-linked link."""
        return {
            "iss": self.issuer,
            "login_hint": person.user_id,
            "lti_message_hint": f"{person.role};{message}" if message else person.role,
            "target_link_uri": self.config.hub_url.rstrip("/") + "/hub/",
            "client_id": self.config.client_id,
            "lti_deployment_id": self.config.deployment_id,
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """Answer the tool's OIDC auth request: an auto-submitting form with the id_token, or an error."""
        required = ("scope", "response_type", "client_id", "redirect_uri", "login_hint", "state", "nonce")
        missing = [name for name in required if not query.get(name)]
        if missing:
            return 400, f"The auth request lacks {', '.join(missing)}."
        if query["client_id"] != self.config.client_id:
            return 400, "Unknown client_id."
        if query["redirect_uri"] != self.config.lti13_redirect_url:
            return 400, "The redirect_uri is not registered for this tool."
        if "openid" not in query["scope"].split() or query["response_type"] != "id_token":
            return 400, "Only scope=openid with response_type=id_token is supported."
        role, _, message = (query.get("lti_message_hint") or "student").partition(";")
        person = Person(query["login_hint"], f"User {query['login_hint']}", role)
        claims = self.id_token_claims(person, query["nonce"])
        context_id = self.course.context_id
        if message == "deeplink":
            claims[LTI + "message_type"] = "LtiDeepLinkingRequest"
            claims.pop(LTI + "resource_link")
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = (
                self.services.deep_link_settings(context_id)
            )
        elif message.startswith("link="):
            number = int(message.removeprefix("link="))
            link = self.services.links[context_id][number - 1]
            claims[LTI + "resource_link"] = {
                "id": f"{context_id}-dl-{number}",
                "title": link.get("title", ""),
            }
            claims[LTI + "custom"] = dict(link.get("custom") or {})
        self.issued.append(claims)
        fields = {"id_token": self.sign_id_token(claims), "state": query["state"]}
        return 200, auto_submit_form(query["redirect_uri"], fields)

    # --- pages ------------------------------------------------------------------------------------

    def index_page(self) -> str:
        """A course page as an LMS shows it: the course, a module, and one launch button per way in."""
        course = html.escape(self.course.title)
        cards = "".join(
            _launch_card(version, role, SAMPLE_PEOPLE[role], self.course)
            for version in ("11", "13")
            for role in ("student", "instructor")
        )
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{course} - HubKit LMS simulator</title><style>{_PAGE_CSS}</style></head><body>"
            f"<header><span class='lms'>HubKit LMS simulator</span><span>Courses / {course}</span></header>"
            f"<main><h1>{course} <small>{html.escape(self.course.label)}</small></h1>"
            "<section><h2>Module 1: Python notebooks</h2><p>Open the course's JupyterHub "
            f"({html.escape(self.config.hub_url)}). Each button signs a sample person in to the hub "
            "with a real, signed LTI launch, the way Canvas or Moodle does, and opens their server.</p>"
            f"<div class='cards'>{cards}</div></section>{self.services.course_sections()}"
            "</main></body></html>"
        )

    def frame_page(self, src: str, title: str) -> str:
        """A course page showing ``src`` in an iframe, the way an LMS embeds a tool."""
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)} - HubKit LMS simulator</title><style>{_PAGE_CSS}</style></head>"
            f"<body><header><span class='lms'>HubKit LMS simulator</span><span>{html.escape(title)}</span>"
            f"</header><main><iframe name='tool' src='{html.escape(src)}' title='JupyterHub' "
            "style='width:100%;height:560px;border:1px solid #ddd' "
            "allow='clipboard-read; clipboard-write'></iframe></main></body></html>"
        )

    def launch_page(self, version: str, role: str, message: str = "") -> tuple[int, str]:
        person = SAMPLE_PEOPLE.get(role)
        if person is None:
            return 404, "No such sample person."
        if version == "11":
            return 200, auto_submit_form(self.config.lti11_launch_url, self.lti11_params(person))
        if version == "13":
            initiation = self.login_initiation(person, message)
            return 200, auto_submit_form(self.config.lti13_login_url, initiation)
        return 404, "No such LTI version."


_PAGE_CSS = """
body{margin:0;font-family:system-ui,sans-serif;background:#f5f5f5;color:#222}
header{background:#2d3b45;color:#fff;padding:.8em 1.5em;display:flex;gap:2em}
header .lms{font-weight:bold}
main{max-width:60em;margin:1.5em auto;padding:0 1em}
h1 small{color:#666;font-weight:normal;font-size:.6em}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1em 1.5em}
.cards{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.card{border:1px solid #ddd;border-radius:6px;padding:1em}
.card button{background:#0374b5;color:#fff;border:0;border-radius:4px;padding:.6em 1em;font-size:1em;
  cursor:pointer}
.card p{color:#444;margin:.6em 0 0}
"""

_WHAT_HAPPENS = {
    "11": "an LTI 1.1 launch signed with OAuth 1.0a (HMAC-SHA1) posted to {url}",
    "13": "an LTI 1.3 OIDC login: the hub asks this LMS for an RS256-signed id_token at {url}",
}


def _launch_card(version: str, role: str, person: Person, course: Course) -> str:
    label = f"Launch as {role} of {course.title} (LTI {'1.1' if version == '11' else '1.3'})"
    how = _WHAT_HAPPENS[version].format(url="/hub/lti/launch" if version == "11" else "/hub/lti13/")
    sees = (
        "the course profile only"
        if role == "student"
        else "the course profile and the instructor-only GPU profile"
    )
    return (
        f"<div class='card'><form method='get' action='/launch/{version}/{role}'>"
        f"<button type='submit'>{html.escape(label)}</button></form>"
        f"<p>Signs you in as <b>{html.escape(person.name)}</b> ({html.escape(role)} of "
        f"{html.escape(course.label)}) with {html.escape(how)}. You then see the spawn form with "
        f"{sees}; starting opens JupyterLab.</p></div>"
    )


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self.action = values.get("action", "")
        elif tag == "input" and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")


def parse_form(page: str) -> tuple[str, dict[str, str]]:
    """The action and fields of the first form of an auto-submitting page (what a browser would POST)."""
    parser = _FormParser()
    parser.feed(page)
    return parser.action, parser.fields


def auto_submit_form(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields.items()
    )
    return (
        '<!doctype html><html><body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(action)}">{inputs}'
        '<noscript><button type="submit">Continue</button></noscript></form></body></html>'
    )


def _handler_for(lms: LMSSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read results, not logs
            return

        def _send(
            self,
            status: int,
            body: str,
            content_type: str = "text/html; charset=utf-8",
            headers: dict[str, str] | None = None,
        ) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _route(self, query: dict[str, str]) -> None:
            path = urlsplit(self.path).path
            parts = [p for p in path.split("/") if p]
            if parts[:1] in (["lti13"], ["nrps"], ["ags"]) and path != "/lti13/authorize":
                headers = dict(self.headers.items())
                answer = lms.services.handle(self.command, path, query, headers, self._body)
                self._send(answer.status, json.dumps(answer.body), answer.content_type, answer.headers)
                return
            if path == "/":
                self._send(200, lms.index_page())
            elif path == "/jwks":
                lms.jwks_requests += 1
                self._send(200, json.dumps(lms.jwks()), "application/json")
            elif path == "/lti13/authorize":
                self._send(*lms.authorize(query))
            elif len(parts) in (3, 4) and parts[0] == "launch":  # /launch/<version>/<role>[/<message>]
                self._send(*lms.launch_page(parts[1], parts[2], parts[3] if len(parts) == 4 else ""))
            elif len(parts) == 3 and parts[0] == "frame":  # the launch inside the course page
                src = f"/launch/{parts[1]}/{parts[2]}"
                self._send(200, lms.frame_page(src, f"{lms.course.title}: JupyterHub"))
            elif path == "/frame-hub":  # the hub's login page framed as-is
                self._send(200, lms.frame_page(lms.config.hub_url.rstrip("/") + "/hub/login", "Hub"))
            else:
                self._send(404, "Not found.")

        _body = b""

        def do_GET(self) -> None:
            self._route(dict(parse_qsl(urlsplit(self.path).query)))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length)
            is_json = "json" in (self.headers.get("Content-Type") or "")
            form = {} if is_json else dict(parse_qsl(self._body.decode()))
            self._route(dict(parse_qsl(urlsplit(self.path).query)) | form)

    return Handler


# --- make dev ------------------------------------------------------------------------------------

DEV_CONSUMER_KEY = "hubkit-dev"
DEV_CONSUMER_SECRET = "hubkit-dev-secret"


def start_dev_lms(hub_url: str = "http://127.0.0.1:8000", port: int = 8001) -> LMSSimulator:
    """Start the simulator for ``make dev`` at http://127.0.0.1:<port> against ``hub_url``."""
    config = LMSConfig(
        hub_url=hub_url,
        consumer_key=DEV_CONSUMER_KEY,
        consumer_secret=DEV_CONSUMER_SECRET,
        client_id="hubkit-dev-client",
        deployment_id="hubkit-dev-deployment",
    )
    lms = LMSSimulator(config, port=port)
    lms.services.roster[lms.course.context_id] = dev_roster()
    return lms.start()


def dev_roster() -> list[dict[str, Any]]:
    """The sample course's roster (NRPS): the two sample people, one more student, one inactive."""
    return [
        member(SAMPLE_PEOPLE["instructor"].user_id, "instructor"),
        member(SAMPLE_PEOPLE["student"].user_id, "student"),
        member("student-0002", "student"),
        member("student-0003", "student", status="Inactive"),
    ]


def write_tool_key(path: Path) -> Path:
    """A fresh RSA key for the hub as an LTI Advantage tool (``tool_key_file``), mode 0600."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    return path


def dev_hub_env() -> dict[str, str]:
    """Environment the dev hub needs: a crypt key, since the identity lives in encrypted auth_state."""
    return {"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)}


def dev_hub_config(lms: LMSSimulator, tool_key_file: Path | None = None) -> str:
    """Hub config for ``make dev``: LTI 1.1 + 1.3 launches from ``lms`` and a local ``admin`` login.

    LTI users are named ``lti:<LMS user id>``; the admin logs in at /hub/local/login (password "hubkit").
    With ``tool_key_file`` the LTI 1.3 side also uses the LMS's Advantage services (roster, grades, deep
    links); the LMS's course page may frame the hub.
    """
    platform = {
        lms.issuer: {
            "client_ids": [lms.config.client_id],
            "authorize_url": lms.authorize_url,
            "jwks_url": lms.jwks_url,
            "deployment_ids": [lms.config.deployment_id],
            "token_url": lms.token_url,
            "frame_origins": [lms.url],
        }
    }
    advantage = {"tool_key_file": str(tool_key_file)} if tool_key_file else {}
    consumers = {lms.config.consumer_key: lms.config.consumer_secret}
    return f"""
# make dev: LTI launches from the LMS simulator at {lms.url}, plus a local "admin" (password "hubkit").
c.JupyterHub.authenticator_class = "hubkit-multi"
c.Authenticator.enable_auth_state = True
c.Authenticator.admin_users = {{"admin"}}
c.HubKitMultiAuthenticator.authenticators = [
    {{"authenticator_class": "hubkit-lti11", "url_prefix": "", "username_prefix": "lti:",
      "label": "Sample course (LTI 1.1)", "lms_url": {lms.url!r}, "config": {{"consumers": {consumers!r}}}}},
    {{"authenticator_class": "hubkit-lti13", "url_prefix": "", "username_prefix": "lti13:",
      "label": "Sample course (LTI 1.3)", "lms_url": {lms.url!r},
      "config": {{"platforms": {platform!r}, "username_key": "sub", **{advantage!r}}}}},
    {{"authenticator_class": "dummy", "url_prefix": "local", "username_prefix": "", "label": "Local admin",
      "config": {{"password": "hubkit", "allowed_users": {{"admin"}}, "allow_all": False}}}},
]
"""
