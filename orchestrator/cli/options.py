"""Options several commands share, in a module of their own: `status`, `history` and `logs`
use them without importing what the deploying commands need."""

from __future__ import annotations

from pathlib import Path

import click

OUTPUT = click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people; json prints one document on stdout for scripts.",
)
APP = click.option(
    "-a", "--application", "application", required=True, help="Application name in the inventory."
)
REVISION = click.option(
    "-r",
    "--revision",
    "revision_spec",
    required=True,
    metavar="REVISION",
    help="A directory, .tar, .tar.gz, .zip, git:REPO@REF or s3://BUCKET/KEY with an appspec.yml.",
)
DEPLOYMENT_CONFIG = click.option(
    "--deployment-config",
    "config_name",
    metavar="NAME",
    help="Use this deployment config instead of the group's (default OneAtATime).",
)
GROUP = click.option(
    "-g", "--group", "group", required=True, help="Deployment group of the application."
)
# What a deploying command shows and reports beyond its progress and result.
REPORTING = (
    click.option(
        "-v",
        "--verbose",
        is_flag=True,
        help="Show the full per-host table even when every host succeeded.",
    ),
    click.option(
        "-q",
        "--quiet",
        is_flag=True,
        help="No progress and no summary: print only errors (on stderr).",
    ),
    click.option(
        "--junit",
        "junit_path",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help="Also write a JUnit XML report to FILE: a test suite per deployment, a test case "
        "per host.",
    ),
)

# Deploying commands: hosts fetch the bundle from a bundle store (README: Inventory).
BUNDLE_STORE = [
    click.option(
        "--bundle-store",
        metavar="s3://BUCKET/PREFIX",
        help="Hosts fetch the bundle from this S3 (or S3-compatible) store instead of having it "
        "pushed over SSH (default: the group's bundle_store).",
    ),
    click.option(
        "--bundle-store-endpoint",
        metavar="URL",
        help="The bundle store's endpoint, for an S3-compatible store.",
    ),
]
REVISION_VERSION = click.option(
    "--revision-version",
    metavar="VERSION_ID",
    help="The version of an s3:// revision (as its ?versionId=).",
)
