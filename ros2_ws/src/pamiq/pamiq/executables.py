"""The one table of pamiq's executables: name -> the module whose `main()` runs it.

setup.py builds its console scripts and the `lib/pamiq/` wrappers from it, the wrappers run
through it (`python -m pamiq.executables <name> ...`), and `pamiq up`'s supervisor and the tests
build node command lines from it. Plain Python with no imports, so setup.py can read it
without installing anything.
"""

from __future__ import annotations

import sys

NODES = {
    'camera_node': 'pamiq.nodes.camera_node',
    'audio_node': 'pamiq.nodes.audio_node',
    'body_node': 'pamiq.nodes.body_node',
    'doom_world_node': 'pamiq.nodes.doom_world_node',
    'osc_actuator_node': 'pamiq.nodes.osc_actuator_node',
    'agent_node': 'pamiq.nodes.agent_node',
    'trainer_node': 'pamiq.nodes.trainer_node',
    'recorder_node': 'pamiq.nodes.recorder_node',
}
EXECUTABLES = {**NODES, 'pamiq': 'pamiq.tools.cli'}


def executable_of(module: str) -> str:
    """The executable named for `module` ('pamiq.nodes.camera_node' -> 'camera_node')."""
    for name, path in EXECUTABLES.items():
        if path == module:
            return name
    raise KeyError(f'{module} is not an executable of pamiq')


def main() -> int:
    """Run the executable named by the first argument with the rest as its arguments."""
    import importlib

    if len(sys.argv) < 2 or sys.argv[1] not in EXECUTABLES:
        print(f'usage: python -m pamiq.executables {{{",".join(EXECUTABLES)}}} [args...]')
        return 2
    name = sys.argv.pop(1)
    sys.argv[0] = name
    return importlib.import_module(EXECUTABLES[name]).main()


if __name__ == '__main__':
    raise SystemExit(main())
