"""Weights delivery across a slow link: one 29 MB blob from a trainer host to an actor host
whose link a token bucket limits (tc tbf, as a home upload's shaper: a 32 KB burst, at most
100 ms of queue), while the actor publishes agent/step at 10 Hz the other way.

Each transport runs in a fresh pair of network namespaces (tests/netns.py; root only) with the
profiles `pamiq up` writes: `udp` (network:=lan), `udp-paced` (weights_mbit at 90 % of the link),
`tls` (secure:=true through a discovery server: TCP), `tls-paced`. Per run: the blob's delivery
time (publish to arrival, after the actor's subscription matched), its goodput, the steps'
rate at the trainer while the blob travelled and their longest gap, and the packets the
trainer's shaper dropped. `--every` publishes a new blob every so many seconds, as a trainer
does each round: KEEP_LAST 1 drops a blob still on its way for the next one.

    sudo .venv/bin/python bench/weights_over_link.py [--mbit 20] [--timeout 90] [--every 0]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time

import benchlib

benchlib.setup()

from netns import Lab  # noqa: E402
from pamiq.ros.transport import SERVER_PROCESS, TLS_SERVER_PORT  # noqa: E402
from pamiq.tools.certs import make_certs  # noqa: E402
from peers import BLOB_MB, Peer, host_plan  # noqa: E402
import pytest  # noqa: E402
from rosgraph import wait_until  # noqa: E402

MODES = ('udp', 'udp-paced', 'tls', 'tls-paced')


def run(mode: str, mbit: float, timeout: float, every: float) -> dict:
    directory = tempfile.mkdtemp(prefix=f'pamiq-bench-{mode}-')
    certs = make_certs(os.path.join(directory, 'certs'), ['trainer', 'actor'])
    arguments: list[dict[str, str]] = [{}, {}]
    if mode.endswith('-paced'):
        for side in arguments:
            side['weights_mbit'] = f'{0.9 * mbit:g}'
    with Lab.open(directory, ['trainer', 'actor']) as lab:
        lab.limit('trainer', mbit)
        hub, other = lab.hosts['trainer'], lab.hosts['actor']
        hub_discovery = other_discovery = ''
        if mode.startswith('tls'):
            hub_discovery, other_discovery = 'server', f'{hub.address}:{TLS_SERVER_PORT}'
            for side, folder in zip(arguments, certs):
                side.update(secure='true', certs=folder)
        hub_plan = host_plan(hub, directory, ['trainer'], hub_discovery, **arguments[0])
        other_plan = host_plan(other, directory, ['actor'], other_discovery, **arguments[1])
        if hub_plan.server_command():
            hub.run(hub_plan.server_command(), hub_plan.server_environment(), SERVER_PROCESS)
        publish = ['--wait-for', '1', '--every', str(every)]
        trainer = Peer(hub, 'trainer', hub_plan.environment('trainer'), directory, *publish)
        actor = Peer(other, 'actor', other_plan.environment('actor'), directory)
        assert wait_until(lambda: trainer.report()['weights_sent'], 60.0, 0.2), trainer.log()
        arrived = wait_until(lambda: actor.weights_from('trainer'), timeout, 0.2)
        sent = trainer.report()['weights_sent'][0]
        end = actor.weights_from('trainer')[0]['t'] if arrived else time.monotonic()
        steps = [s['t'] for s in trainer.steps_from('actor') if sent['t'] <= s['t'] <= end]
        gaps = [b - a for a, b in itertools.pairwise(steps)]
        seconds = end - sent['t']
        return {
            'mode': mode,
            'link_mbit': mbit,
            'weights_mbit': arguments[0].get('weights_mbit'),
            'arrived': bool(arrived),
            'delivery_s': seconds if arrived else None,
            'goodput_mbit': BLOB_MB * 8 / seconds if arrived else None,
            'steps_hz_during': (len(steps) - 1) / (steps[-1] - steps[0])
            if len(steps) > 1
            else 0.0,
            'steps_max_gap_s': max(gaps) if gaps else None,
            'shaper_dropped_packets': lab.dropped('trainer'),
            'published': len(trainer.report()['weights_sent']),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--mbit', type=float, default=20.0, help="the trainer's link, each way")
    parser.add_argument('--timeout', type=float, default=90.0, help='seconds to wait for the blob')
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument(
        '--every',
        type=float,
        default=0.0,
        help='publish a new blob every this many seconds, as a trainer does each round (0: once)',
    )
    options = parser.parse_args()
    results = []
    for mode in options.modes:
        try:
            results.append(run(mode, options.mbit, options.timeout, options.every))
        except pytest.skip.Exception as skipped:
            raise SystemExit(f'weights_over_link: {skipped}') from None
        print(results[-1], flush=True)
    rows = []
    for r in results:
        delivery = (
            f'{r["delivery_s"]:.1f} s ({r["goodput_mbit"]:.1f} Mbit/s)'
            if r['arrived']
            else f'not within {options.timeout:.0f} s'
        )
        gap = f'{r["steps_max_gap_s"]:.2f} s' if r['steps_max_gap_s'] is not None else '-'
        rows.append((
            f'{r["mode"]} over {r["link_mbit"]:g} Mbit/s',
            f'{delivery}; steps {r["steps_hz_during"]:.2f} Hz, longest gap {gap}; '
            f'{r["shaper_dropped_packets"]} packets dropped',
        ))  # fmt: skip
    name = f'weights_over_link_{options.mbit:g}mbit' + (
        f'_every{options.every:g}s' if options.every else ''
    )
    data = {'blob_mb': BLOB_MB, 'every_s': options.every, 'runs': results}
    benchlib.report(name, rows, data)


if __name__ == '__main__':
    main()
