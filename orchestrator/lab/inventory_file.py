"""The inventory that ``lab up`` writes for its fleet."""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from orchestrator.lab.fleet import Lab

ZONES = ("lab-a", "lab-b")


def render_inventory(lab: Lab) -> str:
    """A complete inventory: every host tagged role=web, env=lab, in two zones."""
    data = {
        "defaults": {
            "user": lab.user,
            "become": "none" if lab.user == "root" else "sudo",
            "ssh": {
                "identity_files": [str(lab.client_key)],
                "known_hosts": str(lab.known_hosts),
                "host_key_policy": "strict",
                "config": "none",
                "connect_timeout": 5,
            },
        },
        "hosts": {
            host.name: {
                "address": host.address,
                "port": host.port,
                "deployment_root": lab.deployment_root(host.name),
                "zone": ZONES[index % len(ZONES)],
                "tags": {"role": "web", "env": "lab"},
            }
            for index, host in enumerate(lab.hosts)
        },
        "applications": {
            "hello": {
                "deployment_groups": {
                    "web": {
                        "tag_sets": [
                            [{"key": "role", "value": "web"}],
                            [{"key": "env", "value": "lab"}],
                        ],
                        "deployment_config": "CodeDeployDefault.OneAtATime",
                    },
                    "web-zonal": {
                        "tag_sets": [[{"key": "role", "value": "web"}]],
                        "deployment_config": "ZoneByZone",
                    },
                }
            }
        },
        "deployment_configs": {
            "ThreeQuarters": {"minimum_healthy_hosts": {"type": "FLEET_PERCENT", "value": 75}},
            "ZoneByZone": {
                "minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1},
                "zonal": {
                    "first_zone_monitor_duration": 0,
                    "monitor_duration": 0,
                    "minimum_healthy_hosts_per_zone": {"type": "HOST_COUNT", "value": 0},
                },
            },
        },
    }
    header = (
        f"# Written by 'orchestrator lab up' for the lab fleet in {lab.directory}.\n"
        "# Every host is a real sshd on a loopback address.\n"
        "# inventory.example.yaml in the repository shows every key.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
