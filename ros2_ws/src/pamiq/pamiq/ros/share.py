"""Finding the files pamiq installs under share/pamiq (its parameter YAML, its DDS profile)."""

from __future__ import annotations

import os
import sys


def config_file(name: str) -> str:
    """share/pamiq/config/<name> as installed (ament index, then this prefix), else the source
    tree's config/<name> (a checkout used without installing)."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(os.path.join(get_package_share_directory('pamiq'), 'config', name))
    except Exception:  # no AMENT_PREFIX_PATH, or pamiq not in the ament index
        pass
    candidates.append(os.path.join(sys.prefix, 'share', 'pamiq', 'config', name))
    here = os.path.dirname(os.path.abspath(__file__))
    candidates.append(os.path.join(here, '..', '..', 'config', name))
    for path in candidates:
        if os.path.isfile(path):
            return os.path.normpath(path)
    return os.path.normpath(candidates[-1])
