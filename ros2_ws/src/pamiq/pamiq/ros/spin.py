"""The one `main()` every pamiq node shares: the Jazzy spin idiom plus a clean exit code."""

from __future__ import annotations

from collections.abc import Callable
import signal
import sys
from typing import Protocol

import rclpy
from rclpy.executors import ExternalShutdownException

from pamiq.executables import executable_of
from pamiq.ros.parameters import ParameterError

LOG_FILE_FLAG = '--log-file-name'


class PamiqNode(Protocol):
    """What `run` needs of a node: rclpy's Node plus an explicit `shutdown()`."""

    def destroy_node(self) -> None: ...

    def shutdown(self) -> None:
        """Work that must happen on every exit (the actuator's reset packets, a checkpoint)."""


def with_log_file_name(args: list[str], executable: str) -> list[str]:
    """`args` plus `--ros-args --log-file-name <executable>` unless a log file name is given.

    rcl names a node's log file after the process's executable, which for a Python node is
    'python3' (python3_<pid>_<time>.log in ~/.ros/log); named after the pamiq executable the
    file says which node wrote it: camera_node_<pid>_<time>.log.
    """
    if LOG_FILE_FLAG in args:
        return args
    return [*args, '--ros-args', LOG_FILE_FLAG, executable]


def run(make_node: Callable[[], PamiqNode], args: list[str] | None = None) -> int:
    """Construct a node, spin it until Ctrl-C / SIGTERM, clean up, return the exit code.

    The node's `shutdown()` runs after spinning stops and the node is destroyed, also when the
    context is gone. A bad parameter ends the process with code 1 and the parameter's name on
    stderr.
    """
    module = make_node.__module__
    if module == '__main__':  # started as `python -m pamiq.nodes.<node>`
        module = sys.modules['__main__'].__spec__.name
    rclpy.init(args=with_log_file_name(sys.argv if args is None else args, executable_of(module)))
    node = None
    try:
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # Ctrl-C shuts the context down while the executor may be taking a message; rclpy
        # then fails the take ("Unable to convert call argument"). That is a stop, not a fault.
        if rclpy.ok():
            raise
    except ParameterError as error:
        print(f'[FATAL] {error}', file=sys.stderr)
        return 1
    finally:
        # A terminal's Ctrl-C reaches every process of its group and `ros2 launch` then sends
        # SIGINT again: a second one must not cut the clean-up short (the actuator's reset
        # packets, the trainer's checkpoint). SIGTERM and SIGKILL still end a stuck clean-up.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
            # After destroy_node: the context may already be shut down by the signal, and a
            # destroyed node logs to stderr only instead of failing to reach /rosout.
            node.shutdown()
        rclpy.try_shutdown()
    return 0
