"""The one `main()` every pamiq node shares: the Jazzy spin idiom plus a clean exit code."""

from __future__ import annotations

from collections.abc import Callable
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from pamiq.ros.parameters import ParameterError


def run(make_node: Callable[[], Node], args: list[str] | None = None) -> int:
    """Construct a node, spin it until Ctrl-C / SIGTERM, clean up, return the exit code.

    A node may define `shutdown()` for work that must happen on every exit (the actuator's
    reset packets); it runs after spinning stops and the node is destroyed, also when the
    context is gone.
    A bad parameter ends the process with code 1 and the parameter's name on stderr.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ParameterError as error:
        print(f'[FATAL] {error}', file=sys.stderr)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
            # After destroy_node: the context may already be shut down by the signal, and a
            # destroyed node logs to stderr only instead of failing to reach /rosout.
            shutdown = getattr(node, 'shutdown', None)
            if shutdown is not None:
                shutdown()
        rclpy.try_shutdown()
    return 0
