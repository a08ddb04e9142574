"""The categorised tag menu in the server-rendered form (pure): headings, order, what "may take a while"."""

from __future__ import annotations

import re
from typing import Any

from hubkit.spawner.form import LATER_HEADING, render_form
from hubkit.spawner.image_menu import expand_registry_option, menu_entries, parse_registry
from hubkit.spawner.prepull import SlowImages
from hubkit.spawner.profiles import initialize_profiles

TAGS = ["recommended", "r1_0_0", "r1_1_0", "w_2024_9", "w_2024_10", "w_2024_8"]


def _profiles() -> list[dict[str, Any]]:
    source = parse_registry(
        {
            "url": "https://registry.example.org",
            "repository": "course/python",
            "recommended": "recommended",
            "categories": [
                {
                    "name": "release",
                    "display_name": "Releases",
                    "pattern": r"^r(\d+)_(\d+)_(\d+)$",
                    "label": "Release {1}.{2}.{3}",
                },
                {
                    "name": "weekly",
                    "display_name": "Weekly builds",
                    "pattern": r"^w_(\d{4})_(\d+)$",
                    "count": 2,
                    "older": 1,
                    "label": "Weekly {1} week {2}",
                },
            ],
        },
        "py/image",
    )
    option: dict[str, Any] = {"display_name": "Image", "unlisted_choice": {"enabled": True}}
    expand_registry_option(option, source, menu_entries(source, TAGS))
    return initialize_profiles(
        [{"display_name": "Python", "slug": "py", "profile_options": {"image": option}}]
    )


def _menu(html: str) -> list[tuple[str, list[str]]]:
    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', html, re.S)
    return [(label, re.findall(r'<option value="([^"]+)"', body)) for label, body in groups]


def test_prepulled_tags_first_by_category_then_the_rest() -> None:
    html = render_form(_profiles(), {}, {})
    assert _menu(html) == [
        ("Recommended", ["recommended"]),
        ("Releases", ["r1_1_0"]),
        ("Weekly builds", ["w_2024_10", "w_2024_9"]),
        (LATER_HEADING, ["w_2024_8"]),
    ]
    assert 'size="' in html
    assert re.search(r'<option value="recommended" selected>Recommended</option>', html)


def test_tags_some_node_lacks_move_under_may_take_a_while() -> None:
    slow = SlowImages(choices=frozenset({("py", "image", "w_2024_10"), ("py", "image", "r1_1_0")}))
    html = render_form(_profiles(), {"profile": "py", "image": "w_2024_10"}, {}, slow)
    assert _menu(html) == [
        ("Recommended", ["recommended"]),
        ("Weekly builds", ["w_2024_9"]),
        (LATER_HEADING, ["r1_1_0", "w_2024_10", "w_2024_8"]),
    ]
    assert re.search(r'<option value="w_2024_10" selected>Weekly 2024 week 10</option>', html)
