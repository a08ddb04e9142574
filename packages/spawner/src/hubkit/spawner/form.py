"""The server-rendered spawn form (pure): works without JavaScript, pre-selects the last choice.

Field names follow kubespawner's REST format: ``profile`` (radio), ``profile-option-<profile>--<option>``
(select) and ``profile-option-<profile>--<option>--unlisted-choice`` (text, used when the select is
set to "Other"). The fields of every profile are submitted; only the chosen profile's count.
A categorised registry menu is a list box with a heading per category, prepulled tags first and the
rest under "May take a while to start".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import Environment, select_autoescape

from .prepull import SlowImages
from .profiles import UNLISTED_SUFFIX, Profile

# Next to an image that some node where it can run does not hold yet (from hubkit-prepuller's status).
SLOW_HINT = "First start may take a few minutes"
# The last heading of a categorised tag menu: tags that are not prepulled, or not on every node yet.
LATER_HEADING = "May take a while to start"
MAX_MENU_ROWS = 16

TEMPLATE = """
<div class="hubkit-profiles">
{% for p in profiles %}
<fieldset class="hubkit-profile{% if p.unavailable %} hubkit-unavailable{% endif %}"
  style="margin-bottom:1em">
  <label>
    <input type="radio" name="profile" value="{{ p.slug }}"{% if p.slug == selected %} checked{% endif %}
      {% if p.unavailable %} disabled{% endif %}>
    <strong>{{ p.display_name }}</strong>
  </label>
  {% if p.description %}<p class="hubkit-description">{{ p.description }}</p>{% endif %}
  {% if p.resources %}<p class="hubkit-resources">{{ p.resources }}</p>{% endif %}
  {% if p.availability %}<p class="hubkit-availability">{{ p.availability }}</p>{% endif %}
  {% if p.slow %}<p class="hubkit-prepull">{{ slow_hint }}.</p>{% endif %}
  {% for name, o in p.profile_options.items() %}
  {% set field = "profile-option-" ~ p.slug ~ "--" ~ name %}
  <label for="{{ field }}"{% if o.groups %} style="display:block;margin-top:0.5em"{% endif %}>
    {{- o.display_name or name }}</label>
  {% if o.groups %}
  <select id="{{ field }}" name="{{ field }}" class="hubkit-tag-menu" size="{{ o.size }}"
    style="display:block;min-width:24em;margin:0.3em 0 0.6em">
    {% for heading, items in o.groups %}
    <optgroup label="{{ heading }}">
      {% for slug, c in items %}
      <option value="{{ slug }}"{% if c.selected %} selected{% endif %}>{{ c.display_name or slug }}</option>
      {% endfor %}
    </optgroup>
    {% endfor %}
  {% else %}
  <select id="{{ field }}" name="{{ field }}">
    {% for slug, c in o.choices.items() %}
    <option value="{{ slug }}"{% if c.selected %} selected{% endif %}>{{ c.display_name or slug }}
      {%- if c.slow %} ({{ slow_hint | lower }}){% endif %}</option>
    {% endfor %}
  {% endif %}
    {% if o.unlisted_choice.enabled %}
    <option value="{{ unlisted }}"{% if o.unlisted_value %} selected{% endif %}>
      {{ o.unlisted_choice.display_name_in_choices or "Other..." }}</option>
    {% endif %}
  </select>
  {% if o.unlisted_choice.enabled %}
  <label for="{{ field }}{{ unlisted }}">{{ o.unlisted_choice.display_name or "Other value" }}</label>
  <input type="text" id="{{ field }}{{ unlisted }}" name="{{ field }}{{ unlisted }}" maxlength="256"
    value="{{ o.unlisted_value }}">
  {% endif %}
  {% endfor %}
</fieldset>
{% endfor %}
</div>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def describe_resources(override: Mapping[str, Any]) -> str:
    """One line naming the CPU, memory and accelerators a profile requests."""
    parts = []
    if override.get("cpu_limit") or override.get("cpu_guarantee"):
        parts.append(f"{override.get('cpu_limit') or override.get('cpu_guarantee')} CPU")
    if override.get("mem_limit") or override.get("mem_guarantee"):
        parts.append(f"{override.get('mem_limit') or override.get('mem_guarantee')} memory")
    for name, count in (override.get("extra_resource_limits") or {}).items():
        parts.append(f"{count} x {name}")
    return ", ".join(str(p) for p in parts)


def group_choices(choices: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Headings with their choices for a categorised tag menu (choices carrying ``group``), else [].

    Prepulled choices come first under their category's heading, in menu order; the ones that are not
    prepulled (``prepull`` False, or marked slow by the prepuller's status) follow under one heading.
    """
    if not any("group" in c for c in choices.values()):
        return []
    groups: dict[str, list[tuple[str, Any]]] = {}
    later: list[tuple[str, Any]] = []
    for slug, c in choices.items():
        if c.get("slow") or c.get("prepull") is False:
            later.append((slug, c))
        else:
            groups.setdefault(str(c.get("group") or "Images"), []).append((slug, c))
    if later:
        groups.setdefault(LATER_HEADING, []).extend(later)
    return list(groups.items())


def render_form(
    profiles: Sequence[Profile],
    user_options: Mapping[str, Any],
    availability: Mapping[str, tuple[str, bool]],
    slow: SlowImages | None = None,
) -> str:
    """HTML for ``profiles`` (already filtered for the user); ``availability`` maps slug → (text, usable).

    ``slow`` marks the profiles and choices whose image is not on every node yet.
    """
    slow = slow or SlowImages()
    last = str(user_options.get("profile") or "")
    slugs = [p["slug"] for p in profiles]
    selected = last if last in slugs else next((p["slug"] for p in profiles if p.get("default")), "")
    view: list[dict[str, Any]] = []
    for p in profiles:
        text, usable = availability.get(p["slug"], ("", True))
        options: dict[str, Any] = {}
        for name, o in p.get("profile_options", {}).items():
            mine = p["slug"] == last
            chosen = str(user_options.get(name, "")) if mine else ""
            unlisted_value = str(user_options.get(name + UNLISTED_SUFFIX, "")) if mine else ""
            if chosen not in o["choices"]:
                chosen = next((s for s, c in o["choices"].items() if c.get("default")), "")
            choices = {
                s: {
                    "display_name": c.get("display_name", s),
                    "selected": s == chosen and not unlisted_value,
                    "slow": (p["slug"], name, s) in slow.choices,
                    **{k: c[k] for k in ("group", "prepull") if k in c},
                }
                for s, c in o["choices"].items()
            }
            groups = group_choices(choices)
            rows = len(choices) + len(groups) + (1 if o["unlisted_choice"]["enabled"] else 0)
            options[name] = {
                "display_name": o.get("display_name"),
                "choices": choices,
                "groups": groups,
                "size": min(rows, MAX_MENU_ROWS),
                "unlisted_choice": o["unlisted_choice"],
                "unlisted_value": unlisted_value if o["unlisted_choice"]["enabled"] else "",
            }
        view.append(
            {
                "slug": p["slug"],
                "display_name": p["display_name"],
                "description": p.get("description", ""),
                "resources": describe_resources(p.get("kubespawner_override", {})),
                "availability": text,
                "unavailable": not usable,
                "slow": p["slug"] in slow.profiles,
                "profile_options": options,
            }
        )
    html = _env.from_string(TEMPLATE).render(
        profiles=view, selected=selected, unlisted=UNLISTED_SUFFIX, slow_hint=SLOW_HINT
    )
    # JupyterHub renders an options form as a Jinja template once more: no brace may survive from
    # user-supplied values (a saved unlisted value), so all are entity-encoded.
    return html.replace("{", "&#123;").replace("}", "&#125;")
