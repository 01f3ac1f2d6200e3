"""The host-side steps the peers run, one command each: the floor's script split where a user of
Fabric or pyinfra would split it. No dependencies, so a peer's own virtualenv can import it."""

from __future__ import annotations

STATE = "/srv/floor-state"


def work_dir(deployment_id: str) -> str:
    return f"/srv/floor-work/{deployment_id}"


def prepare(deployment_id: str) -> str:
    return f"rm -rf {work_dir(deployment_id)} && mkdir -p {work_dir(deployment_id)}/archive"


def bundle_path(deployment_id: str) -> str:
    return f"{work_dir(deployment_id)}/bundle.tar"


def steps(deployment_id: str) -> list[str]:
    """After the upload: unpack, ApplicationStop, BeforeInstall, install the files, AfterInstall,
    ApplicationStart, ValidateService, record the release, remove older releases."""
    work = work_dir(deployment_id)
    env = f"export DEPLOYMENT_ID={deployment_id} APP_ROOT=/srv/floor-app STATE_DIR={STATE}"
    in_archive = f"cd {work}/archive && {env} && "
    return [
        f"tar -x --no-same-owner -f {bundle_path(deployment_id)} -C {work}/archive",
        in_archive
        + f'if [ -f {STATE}/current ]; then sh "$(cat {STATE}/current)/scripts/stop.sh"; fi',
        in_archive + "sh scripts/before_install.sh",
        in_archive
        + "rm -rf /srv/floor-app && mkdir -p /srv/floor-app && cp -a app/. /srv/floor-app/",
        in_archive + "sh scripts/after_install.sh",
        in_archive + "sh scripts/start.sh",
        in_archive + "sh scripts/validate.sh",
        f"echo {work}/archive > {STATE}/current",
        # Only the current release is kept (orchestrator keeps max_revisions, 5 by default).
        f'for old in /srv/floor-work/*; do [ "$old" = {work} ] || rm -rf "$old"; done',
    ]
