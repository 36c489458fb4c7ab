"""The DDS transport settings that travel with the graph (`ros2 launch` and `pamiq up`).

Fast DDS's defaults send a camera frame larger than its 512 KB shared-memory segment as UDP
fragments, and about half of them are lost: a 1280x720 VRChat screen then acts at ~4.4 Hz
instead of 10. The project's profile (config/fastdds_loopback.xml: shared memory with a 64 MB
segment plus UDP on 127.0.0.1) holds 10 Hz up to 1920x1080. It is applied to every node unless
the user has chosen a profile of their own.
"""

from __future__ import annotations

from collections.abc import Mapping

from pamiq.ros.share import config_file

# Fast DDS 2.x (Jazzy) reads FASTRTPS_..., 3.x (Kilted and later) FASTDDS_...: set both.
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')
PROFILE = 'fastdds_loopback.xml'


def transport_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The environment variables to add to `env` for the nodes: none when `env` names a
    profile already, else the project's profile for both Fast DDS generations."""
    if any(env.get(name) for name in PROFILE_VARIABLES):
        return {}
    path = config_file(PROFILE)
    return {name: path for name in PROFILE_VARIABLES}
