"""The one `main()` every pamiq node shares: the Jazzy spin idiom plus a clean exit code."""

from __future__ import annotations

from collections.abc import Callable
import faulthandler
import gc
import os
import signal
import sys
import time
from typing import Protocol

import rclpy
from rclpy.executors import ExternalShutdownException

from pamiq.executables import EXECUTABLES, executable_of
from pamiq.ros import acting_domain
from pamiq.ros.isolation import ISOLATED_EXIT, Isolated, watch_isolation
from pamiq.ros.parameters import ParameterError

LOG_FILE_FLAG = '--log-file-name'
# The exit code of a clean-up that SIGTERM cut short (as a shell reports death by SIGTERM).
STUCK_CLEANUP_EXIT = 128 + signal.SIGTERM
# Seconds a failed take may come before the context it failed in says it is shut down.
SHUTDOWN_GRACE = 1.0


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


def end_stuck_cleanup_on_sigterm() -> None:
    """From here on SIGTERM prints every thread's stack to stderr and ends the process.

    rclpy's own SIGTERM handler only shuts the context down, which during clean-up is already
    done: a clean-up that hangs would otherwise wait for SIGKILL and leave no trace of where it
    hung. The stacks are written at once, from the signal handler, even when the main thread is
    stuck in C; the exit follows as soon as Python runs again.
    """

    def end(signum, frame) -> None:
        os._exit(STUCK_CLEANUP_EXIT)

    signal.signal(signal.SIGTERM, end)
    # Registered after `end`, so that it chains to it after dumping.
    faulthandler.register(signal.SIGTERM, file=sys.stderr, all_threads=True, chain=True)


def freeze_startup_objects() -> None:
    """Leave what exists once a node is built out of every later garbage collection.

    Python's full collection walks every tracked object: with torch loaded a node holds ~185,000
    of them, and one full collection took ~95 ms, a late action when it came between two frames.
    Nearly all were made at start-up (modules, models) and live as long as the process, so after
    one collection of the start-up's garbage they are frozen (gc.freeze) and later collections
    walk only what was made since: 0.0 ms for the same heap.
    """
    gc.collect()
    gc.freeze()


def context_shuts_down(within: float) -> bool:
    """Whether the default context is, or within `within` seconds becomes, shut down."""
    deadline = time.monotonic() + within
    while rclpy.ok():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def run(make_node: Callable[[], PamiqNode], args: list[str] | None = None) -> int:
    """Construct a node, spin it until Ctrl-C / SIGTERM, clean up, return the exit code.

    The node's `shutdown()` runs after spinning stops and the node is destroyed, also when the
    context is gone. A bad parameter ends the process with code 1 and the parameter's name on
    stderr; a node that discovery left out of a secure graph ends with ISOLATED_EXIT, to be
    started again (pamiq.ros.isolation).
    """
    args = sys.argv if args is None else args
    module = make_node.__module__
    main_spec = sys.modules['__main__'].__spec__
    if module == '__main__' and main_spec is not None:  # `python -m pamiq.nodes.<node>`
        module = main_spec.name
    if module in EXECUTABLES.values():  # not a node of someone else's built on run()
        args = with_log_file_name(args, executable_of(module))
    split = acting_domain.enabled()
    node = None
    public = None
    code = 0
    try:
        if split:
            # Experimental (issue 24): the node on the private acting domain with shared memory,
            # its public face on ROS_DOMAIN_ID without (pamiq.ros.acting_domain).
            with acting_domain.participant_environment(shared_memory=True):
                rclpy.init(args=args, domain_id=acting_domain.acting_domain())
                node = make_node()
            public = acting_domain.PublicFace(node)
        else:
            rclpy.init(args=args)
            node = make_node()
        watch_isolation(node)
        freeze_startup_objects()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # Ctrl-C shuts the context down while the executor may be taking a message; rclpy
        # then fails the take ("Unable to convert call argument"). That is a stop, not a fault.
        # The take can fail a moment before the context says it is shut down (seen once in
        # a fresh-clone run), so the context gets a second to say so.
        if not context_shuts_down(SHUTDOWN_GRACE):
            raise
    except ParameterError as error:
        print(f'[FATAL] {error}', file=sys.stderr)
        return 1
    except Isolated as error:
        print(f'[ERROR] {error}', file=sys.stderr, flush=True)
        code = ISOLATED_EXIT
    finally:
        # A terminal's Ctrl-C reaches every process of its group and `ros2 launch` then sends
        # SIGINT again: a second one must not cut the clean-up short (the actuator's reset
        # packets, the trainer's checkpoint). SIGTERM ends a stuck clean-up, saying where.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        end_stuck_cleanup_on_sigterm()
        if public is not None:
            public.close()
        if node is not None:
            node.destroy_node()
            # After destroy_node: the context may already be shut down by the signal, and a
            # destroyed node logs to stderr only instead of failing to reach /rosout.
            node.shutdown()
        rclpy.try_shutdown()
    return code
