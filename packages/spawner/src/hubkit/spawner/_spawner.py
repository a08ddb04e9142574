"""The hub-facing spawner class: traits, and the KubeSpawner hooks that call the pure builders."""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Any

from jupyterhub.utils import maybe_future
from kubernetes_asyncio.client import V1ConfigMap, V1Pod
from kubespawner import KubeSpawner
from tornado import web
from traitlets import Bool, CaselessStrEnum, Dict, Float, Integer, List, Unicode

from ._images import ImageMenuMixin
from ._prepull import PrepullMixin
from ._progress import ProgressMixin
from ._scheduling import SchedulingMixin
from ._volume_health import VolumeHealthMixin
from .exceptions import IdentityError, SpawnRefused
from .form import render_form
from .identity import Identity, fallback_identity, parse_identity, posix_username
from .jupyterhub_compat import spawn_refusal
from .kube_storage import KubeStorage
from .nss import NssInput, build_nss_configmap, nss_mounts, nss_volume
from .options_store import drop, install_guard, restore, take_new
from .overrides import merge_trait
from .profiles import (
    Profile,
    Selection,
    initialize_profiles,
    resolve_selection,
    user_options_from_form,
    visible_profiles,
)
from .provisioner import request_home
from .security import SecuritySettings, apply_restricted_identity
from .storage_layout import build_storage, parse_layout

DEFAULT_PASSWD = [
    "root:x:0:0:root:/root:/bin/sh",
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
]
DEFAULT_GROUP = ["root:x:0:", "users:x:100:", "nogroup:x:65534:"]


def refusal(error: SpawnRefused) -> web.HTTPError:
    """The 400 a refused spawn becomes at the hub boundary (one sentence for the user), labelled with the
    refusal's reason in the spawn metrics where JupyterHub supports it (jupyterhub_compat)."""
    return spawn_refusal(error.user_message, error.reason)


class HubKitSpawner(
    ProgressMixin,
    SchedulingMixin,
    ImageMenuMixin,
    PrepullMixin,
    VolumeHealthMixin,
    KubeSpawner,  # type: ignore[misc]  # KubeSpawner is untyped
):
    """KubeSpawner with HubKit's profile access rules, identity and storage layout.

    Every upstream ``KubeSpawner`` option keeps working unchanged; HubKit's own options are
    documented in ``docs/spawner.md``.
    """

    if TYPE_CHECKING:
        user_options: dict[str, Any]  # JupyterHub's Spawner trait

    identity_fallback = CaselessStrEnum(
        ["refuse", "fixed"],
        default_value="refuse",
        config=True,
        help="""What to do for a user whose auth_state has no "hubkit" identity block.

        "refuse" stops the spawn with a plain message; "fixed" runs the pod as ``fallback_uid`` /
        ``fallback_gid`` with a home named from the JupyterHub username (``jupyterhub:<name>``).
        """,
    )
    fallback_uid = Integer(
        1000, config=True, help="uid for users without an identity block (identity_fallback='fixed')."
    )
    fallback_gid = Integer(
        1000, config=True, help="gid for users without an identity block (identity_fallback='fixed')."
    )
    fs_group = Integer(
        None,
        allow_none=True,
        config=True,
        help="The pod's fsGroup. None (default) uses the user's primary gid from their identity.",
    )
    nss_enabled = Bool(
        True,
        config=True,
        help="""Create a per-user ConfigMap with passwd and group files and mount it over /etc/passwd and
        /etc/group, so `id`, `whoami`, `ls -l` and git know the user in any image.""",
    )
    nss_base_passwd = List(
        Unicode(),
        default_value=DEFAULT_PASSWD,
        config=True,
        help="passwd lines of the base image to keep (the user's own line is appended).",
    )
    nss_base_group = List(
        Unicode(),
        default_value=DEFAULT_GROUP,
        config=True,
        help="group lines of the base image to keep (the user's groups are appended).",
    )
    nss_home_path = Unicode(
        "/home/jovyan", config=True, help="The home directory written to the user's passwd line."
    )
    nss_shell = Unicode("/bin/bash", config=True, help="The login shell written to the user's passwd line.")
    nss_configmap_name_template = Unicode(
        "{pod_name}-nss",
        config=True,
        help="Name of the per-user NSS ConfigMap; {pod_name} is the pod's name.",
    )
    storage_layout = Dict(
        config=True,
        help="""Declarative storage: {"home": {...}, "courses": [...], "scratch": {...}}. Each entry has a
        source ("nfs": {"server", "path"} or "pvc": "<claim>") and a "mount_path". Homes and scratch
        directories are named by the identity's `home`, never by the username. Courses have "name",
        optional "sub_path", "read_groups" (None = everyone) and "write_groups" (globs); readers get a
        read-only mount, writers a read-write one. See docs/spawner.md.""",
    )
    home_provisioner_url = Unicode(
        "",
        config=True,
        help="""URL of `hubkit-spawner provision-server` next to the home export. When set, the spawner
        asks it to create the user's home (owned by uid:gid, mode 0700, skeleton files) before creating
        the pod.""",
    )
    home_provisioner_token = Unicode("", config=True, help="Bearer token for the home provisioner.")
    home_provisioner_timeout = Float(10.0, config=True, help="Seconds to wait for the home provisioner.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hubkit_baseline: dict[str, Any] = {}
        self._hubkit_applied: set[str] = set()
        self._hubkit_auth_state: Any = None
        self._hubkit_prepared = False
        self._selection_ready = asyncio.Event()
        self.hubkit_selection: Selection | None = None
        self.hubkit_identity: Identity | None = None
        self.kube_storage = KubeStorage(self.api, self.k8s_api_request_timeout)
        self.hubkit_steps: list[str] = []
        self.hubkit_step_times: list[float] = []
        install_guard()

    # --- who the user is ------------------------------------------------------------------------

    def user_groups(self) -> list[str]:
        return sorted(g.name for g in getattr(self.user, "groups", []) or [])

    async def run_auth_state_hook(self, auth_state: Any) -> Any:
        self._hubkit_auth_state = auth_state
        return await super().run_auth_state_hook(auth_state)

    def resolve_identity(self) -> Identity:
        identity = parse_identity(self._hubkit_auth_state, self.user.name)
        if identity is not None:
            return identity
        if self.identity_fallback == "fixed":
            return fallback_identity(self.user.name, self.fallback_uid, self.fallback_gid)
        raise IdentityError(
            "Your account has no POSIX identity yet, so no server was started; sign out and in again.",
            f"user={self.user.name} has no auth_state['hubkit'] block",
        )

    # --- profiles -------------------------------------------------------------------------------

    async def hubkit_profiles(self) -> list[Profile]:
        """The configured profile_list, evaluated and initialized (all profiles, before access rules)."""
        profile_list = self.profile_list
        if callable(profile_list):
            profile_list = await maybe_future(profile_list(self))
        profiles = copy.deepcopy(list(self._sorted_dict_values(profile_list) or []))
        await self.expand_image_menus(profiles)
        return initialize_profiles(profiles)

    def _reset_overrides(self) -> None:
        """Put back every trait a previous spawn overrode, so overrides never leak into the next one."""
        for name in self._hubkit_applied:
            setattr(self, name, copy.deepcopy(self._hubkit_baseline[name]))
        self._hubkit_applied = set()

    def _apply_overrides(self, spawner_override: dict[str, Any]) -> None:
        for name, value in spawner_override.items():
            if callable(value):
                value = value(self)
            if name not in self._hubkit_baseline:
                self._hubkit_baseline[name] = copy.deepcopy(getattr(self, name))
            self._hubkit_applied.add(name)
            setattr(self, name, merge_trait(name, getattr(self, name), value))

    def _log_refusal(self, e: SpawnRefused) -> None:
        name, namespace = self.user.name, self.namespace
        self.log.warning("Refused spawn for %s (%s): %s [%s]", name, namespace, e.user_message, e.log_context)

    async def _select(self, profiles: list[Profile], options: Any) -> Selection:
        selection = resolve_selection(profiles, self.user_groups(), options)
        await self.check_unlisted_images(profiles, selection)
        return selection

    async def _select_saved_or_new(self, profiles: list[Profile]) -> Selection:
        """The selection of this start's user_options; a refused one is never kept in the database.

        A new value (sent with this start) that is refused is replaced by the one it overwrote, and the
        start is refused; a saved value that no longer validates is dropped and the defaults are used.
        """
        orm_spawner = getattr(self, "orm_spawner", None)
        new = take_new(orm_spawner) if orm_spawner is not None else None
        try:
            return await self._select(profiles, self.user_options)
        except SpawnRefused as e:
            if orm_spawner is None:
                raise
            if new is not None:
                self.user_options = restore(orm_spawner, self.db, new)
                raise
            self.log.warning(
                "Dropped the saved server options of %s, which are no longer valid: %s [%s]",
                self.user.name,
                e.user_message,
                e.log_context,
            )
            drop(orm_spawner, self.db)
            self.user_options = {}
        return await self._select(profiles, {})

    async def load_user_options(self) -> None:
        """Validate user_options with access rules, then apply fresh overrides (called by start)."""
        self._reset_overrides()
        self._step("Checking your server options.")
        try:
            profiles = await self.hubkit_profiles()
            self.schedule_menu_publish(profiles)
            selection = await self._select_saved_or_new(profiles)
            self.hubkit_identity = self.resolve_identity()
            await self.check_volumes()
        except SpawnRefused as e:
            self._log_refusal(e)
            raise refusal(e) from e
        self.hubkit_selection = selection
        self._selection_ready.set()
        self.log.info("Spawning %s with profile %r %s", self.user.name, selection.profile, selection.choices)
        for override in selection.overrides:
            self._apply_overrides(override)

    # --- the form -------------------------------------------------------------------------------

    async def _hubkit_options_form(self, spawner: Any) -> str:
        profiles = await self.hubkit_profiles()
        if not profiles:
            return ""
        self.schedule_menu_publish(profiles)
        visible = visible_profiles(profiles, self.user_groups())
        availability, hints = await asyncio.gather(
            self.profile_availability(visible), self.image_hints(visible)
        )
        return render_form(visible, self.user_options or {}, availability, hints)

    def _options_form_default(self) -> Any:
        if not self.profile_list:
            return ""
        return self._hubkit_options_form

    async def _options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, str]:
        """The form's user_options, validated with the access rules before JupyterHub saves them."""
        try:
            options = user_options_from_form(formdata)
            await self._select(await self.hubkit_profiles(), options)
        except SpawnRefused as e:
            self.log.warning(
                "Refused spawn form of %s: %s [%s]", self.user.name, e.user_message, e.log_context
            )
            raise refusal(e) from e
        return options

    def _options_from_form_default(self) -> Any:
        return self._options_from_form

    # --- what the spawn creates -----------------------------------------------------------------

    @property
    def nss_configmap_name(self) -> str:
        return str(self.nss_configmap_name_template.format(pod_name=self.pod_name))

    def nss_configmap(self) -> V1ConfigMap | None:
        if not self.nss_enabled or self.hubkit_identity is None:
            return None
        return build_nss_configmap(
            NssInput(
                name=self.nss_configmap_name,
                namespace=self.namespace,
                username=posix_username(self.user.name),
                identity=self.hubkit_identity,
                home_path=self.nss_home_path,
                shell=self.nss_shell,
                base_passwd=self.nss_base_passwd,
                base_group=self.nss_base_group,
                labels=self._build_common_labels({}),
            )
        )

    def get_args(self) -> list[str]:
        """Upstream's arguments, plus the LMS frame policy of HubKit's LTI authenticators (if any):
        single-user servers then accept the same ``frame-ancestors`` as the hub, without a custom image."""
        args = list(super().get_args())
        frame_args = getattr(self.authenticator, "hubkit_singleuser_args", None)
        return args + (list(frame_args()) if callable(frame_args) else [])

    async def get_pod_manifest(self) -> V1Pod:
        pod: V1Pod = await super().get_pod_manifest()
        identity = self.hubkit_identity
        if identity is None:
            return pod
        volumes, mounts = build_storage(parse_layout(self.storage_layout), identity, self.user_groups())
        if self.nss_enabled:
            volumes.append(nss_volume(self.nss_configmap_name))
            mounts.extend(nss_mounts())
        pod.spec.volumes = [*(pod.spec.volumes or []), *volumes]
        container = pod.spec.containers[0]
        container.volume_mounts = [*(container.volume_mounts or []), *mounts]
        fs_group = self.fs_group if self.fs_group is not None else identity.gid
        return apply_restricted_identity(pod, SecuritySettings(identity=identity, fs_group=fs_group))

    async def spawn_objects(self) -> list[Any]:
        """Every object this spawn creates, in creation order (used by `hubkit-spawner render`)."""
        objects: list[Any] = []
        configmap = self.nss_configmap()
        if configmap is not None:
            objects.append(configmap)
        if self.storage_pvc_ensure:
            objects.append(self.get_pvc_manifest())
        objects.append(await self.get_pod_manifest())
        return objects

    async def _prepare_before_pod(self) -> None:
        identity = self.hubkit_identity
        if identity is not None and self.home_provisioner_url:
            self._step("Preparing your home directory.")
            try:
                created = await request_home(
                    self.home_provisioner_url,
                    self.home_provisioner_token,
                    identity,
                    self.home_provisioner_timeout,
                )
            except SpawnRefused as e:
                self.log.warning(
                    "Refused spawn for %s: %s [%s]", self.user.name, e.user_message, e.log_context
                )
                raise refusal(e) from e
            self.log.info(
                "Home %s of %s %s", identity.home, self.user.name, "created" if created else "exists"
            )
        configmap = self.nss_configmap()
        if configmap is not None:
            await self.kube_storage.replace_configmap(configmap)

    async def _make_create_pod_request(self, pod: V1Pod, request_timeout: float) -> Any:
        if not self._hubkit_prepared:
            await self._prepare_before_pod()
            self._hubkit_prepared = True
            self._step("Asking Kubernetes for a machine to run your server.")
        return await super()._make_create_pod_request(pod, request_timeout)

    async def _start(self) -> Any:
        self._hubkit_prepared = False
        self.hubkit_selection = None
        self.hubkit_steps, self.hubkit_step_times = [], []
        self._selection_ready = asyncio.Event()
        steps = asyncio.ensure_future(self._watch_pod_steps())
        try:
            url = await self._run_with_gpu_watch(super()._start(), self._selection_ready)
        except BaseException:
            if self._hubkit_prepared and self.nss_enabled:
                await self.kube_storage.delete_configmap(self.namespace, self.nss_configmap_name)
            raise
        finally:
            steps.cancel()
        if self._hubkit_prepared and self.nss_configmap() is not None and self.pod_id:
            await self.kube_storage.set_owner(
                self.namespace, self.nss_configmap_name, self.pod_name, self.pod_id
            )
        self._step("Your server has started; waiting for it to answer.")
        return url

    async def stop(self, now: bool = False) -> Any:
        result = await super().stop(now)
        if self.nss_enabled:
            await self.kube_storage.delete_configmap(self.namespace, self.nss_configmap_name)
        return result
