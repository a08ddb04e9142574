"""Profile access rules and user_options resolution, as pure functions (no cluster)."""

from __future__ import annotations

from typing import Any

import pytest

from hubkit.spawner.exceptions import ConfigError, SpawnRefused
from hubkit.spawner.profiles import (
    initialize_profiles,
    resolve_selection,
    user_options_from_form,
    visible_profiles,
)

PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "CPU",
        "slug": "cpu",
        "kubespawner_override": {"cpu_limit": 1},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "python": {"display_name": "Python", "kubespawner_override": {"image": "py:1"}},
                    "grader": {
                        "display_name": "Grader",
                        "allowed_groups": ["course:*:instructor"],
                        "kubespawner_override": {"image": "grader:1"},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "allowed_groups": ["course:*:instructor"],
                    "validation_regex": r"^example/[a-z]+:[0-9.]+$",
                    "validation_message": "use example/<name>:<version>",
                    "kubespawner_override": {"image": "{value}"},
                },
            }
        },
    },
    {
        "display_name": "GPU",
        "slug": "gpu",
        "allowed_groups": ["course:*:instructor", "github:my-org:gpu-users"],
        "kubespawner_override": {"extra_resource_limits": {"nvidia.com/gpu": "1"}},
    },
]
STUDENT = ["course:ds100:student"]
INSTRUCTOR = ["course:ds100:instructor"]


def test_student_sees_only_allowed_profiles_and_choices() -> None:
    visible = visible_profiles(initialize_profiles(PROFILES), STUDENT)
    assert [p["slug"] for p in visible] == ["cpu"]
    option = visible[0]["profile_options"]["image"]
    assert list(option["choices"]) == ["python"]
    assert option["unlisted_choice"]["enabled"] is False


def test_instructor_sees_everything_by_glob() -> None:
    visible = visible_profiles(initialize_profiles(PROFILES), INSTRUCTOR)
    assert [p["slug"] for p in visible] == ["cpu", "gpu"]
    assert list(visible[0]["profile_options"]["image"]["choices"]) == ["python", "grader"]
    # a GitHub team group alone opens the GPU profile too
    assert [
        p["slug"] for p in visible_profiles(initialize_profiles(PROFILES), ["github:my-org:gpu-users"])
    ] == [
        "cpu",
        "gpu",
    ]


def test_default_selection_applies_profile_then_default_choice() -> None:
    sel = resolve_selection(initialize_profiles(PROFILES), STUDENT, {})
    assert sel.profile == "cpu"
    assert sel.choices == {"image": "python"}
    assert sel.overrides == ({"cpu_limit": 1}, {"image": "py:1"})


def test_unlisted_value_is_formatted_into_override_for_instructor() -> None:
    sel = resolve_selection(
        initialize_profiles(PROFILES),
        INSTRUCTOR,
        {"profile": "cpu", "image--unlisted-choice": "example/julia:2"},
    )
    assert sel.unlisted == {"image": "example/julia:2"}
    assert sel.overrides[1] == {"image": "example/julia:2"}
    # and the configuration itself is untouched
    assert PROFILES[0]["profile_options"]["image"]["unlisted_choice"]["kubespawner_override"] == {
        "image": "{value}"
    }


@pytest.mark.parametrize(
    ("groups", "options", "sentence"),
    [
        (STUDENT, {"profile": "gpu"}, "You may not use the profile 'gpu'; you may pick: cpu."),
        (STUDENT, {"profile": "nope"}, "There is no profile 'nope'; you may pick: cpu."),
        (
            STUDENT,
            {"profile": "cpu", "image": "grader"},
            "You may not use 'grader' for 'image'; you may pick: python.",
        ),
        (
            STUDENT,
            {"profile": "cpu", "image": "ghost"},
            "'ghost' is not a choice for 'image'; you may pick: python.",
        ),
        (
            STUDENT,
            {"profile": "cpu", "image--unlisted-choice": "example/x:1"},
            "The profile 'cpu' does not let you give your own value for 'image'; pick one of: python.",
        ),
        (
            INSTRUCTOR,
            {"profile": "cpu", "image--unlisted-choice": "../etc/passwd"},
            "'../etc/passwd' is not a valid value for 'image': use example/<name>:<version>.",
        ),
        (
            INSTRUCTOR,
            {"profile": "cpu", "cpu_limit": "64"},
            "'cpu_limit' is not an option of the profile 'cpu'; its options are: image.",
        ),
        (
            INSTRUCTOR,
            {"profile": "gpu", "image": "python"},
            "'image' is not an option of the profile 'gpu'; its options are: nothing.",
        ),
        (INSTRUCTOR, {"profile": 5}, "Server option 'profile' must have a text value."),
        (
            INSTRUCTOR,
            {"profile": "cpu", "image": "x" * 300},
            "Server option 'image' is too long; use at most 256 characters.",
        ),
        (
            INSTRUCTOR,
            {"profile": "cpu", "image": "python", "image--unlisted-choice": "example/a:1"},
            "Send either a choice or your own value for 'image', not both.",
        ),
    ],
)
def test_refusals_are_one_plain_sentence(groups: list[str], options: dict[str, Any], sentence: str) -> None:
    with pytest.raises(SpawnRefused) as err:
        resolve_selection(initialize_profiles(PROFILES), groups, options)
    assert err.value.user_message == sentence
    assert ". " not in err.value.user_message
    assert err.value.user_message.endswith(".")


def test_no_profile_at_all_for_user_is_refused() -> None:
    only_gpu = [PROFILES[1]]
    with pytest.raises(SpawnRefused, match="No server profile is available to you"):
        resolve_selection(initialize_profiles(only_gpu), STUDENT, {})


def test_options_without_profile_list_are_refused() -> None:
    with pytest.raises(SpawnRefused, match="offers no server options"):
        resolve_selection([], STUDENT, {"image": "x"})
    assert resolve_selection([], STUDENT, {}).profile == ""


def test_bad_allowed_groups_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        initialize_profiles([{"display_name": "x", "allowed_groups": "course:*"}])


def test_form_fields_map_to_rest_user_options() -> None:
    form = {
        "_xsrf": ["t"],
        "profile": ["cpu"],
        "profile-option-cpu--image": ["--unlisted-choice"],
        "profile-option-cpu--image--unlisted-choice": ["example/julia:2"],
        "profile-option-gpu--image": ["python"],  # another profile's field: ignored
    }
    assert user_options_from_form(form) == {"profile": "cpu", "image--unlisted-choice": "example/julia:2"}
    assert user_options_from_form({"profile": ["cpu"], "profile-option-cpu--image": ["python"]}) == {
        "profile": "cpu",
        "image": "python",
    }


@pytest.mark.parametrize(
    ("form", "sentence"),
    [
        (
            {"profile": ["cpu"], "evil": ["1"]},
            "The form field 'evil' is not part of this form; reload the page.",
        ),
        ({"profile": ["cpu", "gpu"]}, "The form field 'profile' was sent 2 times; send it once."),
        ({"profile": ["c" * 1000]}, "The form field 'profile' is too long; use at most 256 characters."),
    ],
)
def test_hostile_forms_are_refused(form: dict[str, list[str]], sentence: str) -> None:
    with pytest.raises(SpawnRefused) as err:
        user_options_from_form(form)
    assert err.value.user_message == sentence
