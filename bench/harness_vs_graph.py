"""Harness = graph: the live lockstep graph and `pamiq train` with its settings reach the same
coverage (issue 23, section 3).

Three parts, each skipped when its result is in WORK already (run it again to go on):

1. graph: `pamiq up world:=doom real_time_factor:=0 actors:=2 model:=compact reward:=e3b
   run_dir:=WORK/graph_run` (the curiosity agent, continuous axes: the params file's defaults)
   until its trainer has trained on --steps agent steps (the sum of its rounds' `update/samples`
   in run_dir/tb); then the nodes' diagnostics are read (the worlds' steps acted), the trainer
   is paused (trainer/set_active: the round in progress ends, no other starts), and SIGINT stops
   the graph: the trainer writes its final checkpoint, whose rounds are exactly those counted.
2. harness: `pamiq train --world doom --envs 2 --steps S --reward e3b --model compact
   --world-action-space continuous --rollout-length 128 --horizon 500 --seed 0 --threads T
   --out WORK/harness_run` with S = the steps the graph's trainer trained on, and T the
   trainer's torch threads in lockstep (half the cores).
3. eval: `pamiq eval --checkpoint GRAPH HARNESS --policies random --episodes 100
   --first-seed 1000 --action-space continuous --out WORK/eval`: the same held-out spawns
   for all three, so the episodes are paired.

Reports cells per episode with bootstrap 95 % intervals for graph, harness and uniform random,
whether the graph's and the harness's intervals overlap (the acceptance), and the paired
difference graph - harness; writes bench/results/harness_vs_graph.json.

    .venv/bin/python bench/harness_vs_graph.py [--steps 100000] [--episodes 100]
        [--work runs/harness_vs_graph] [--seed 0 --name harness_vs_graph]

--seed S (one work directory and --name per seed): the trainer's and pamiq train's initial
weights from S; the graph's worlds and agents seeded from 2S on (actor i adds i), through a copy
of the shipped parameters. One run per side cannot tell a gap from the spread between seeds.

The same in both (the one home of each is named):
- the world: my_way_home, 160x120 frames whose centre square becomes the compact preset's
  42x42 gray view, 4 frames stacked; 3.5 tics (0.1 s) per step; the 3 continuous axes, turn rate
  120 deg/s; episodes of 2,100 tics (600 steps), a new one at once after the last;
- 2 worlds acting at once, one stream each (its own rollouts, reward normaliser sum and e3b
  memory);
- the models: compact policy and e3b (ridge 10, inverse dynamics, learning rate 1e-4, one epoch
  of 256-sample minibatches per update), initial weights from seed 0 (the trainer's seed, and
  --seed 0);
- the update: pamiq.learning.update.PolicyLearner.update, the same code: e3b trains on the
  update's transitions, rewards are divided per stream by the running std of their discounted
  sum, then PPO with BATCHED_PPO (clip 0.1, 3 epochs, entropy 0.001, value 0.5, grad norm 0.5,
  gamma 0.99, lambda 0.95, normalised advantages, clipped value loss, Adam eps 1e-5),
  minibatches of 256 samples, policy learning rate 2.5e-4; no learning-rate annealing;
- rollouts of 128 steps per stream (the live trainer's rollout_length; pamiq train's own default
  is 32), so 256 samples per update;
- the e3b memory also starts afresh every 500 steps of a stream (the agent's memory_horizon;
  --horizon 500);
- the steps trained on (the harness's --steps is the graph's count, rounded up by the engine to
  a whole update of 256);
- torch threads for training (the live trainer's torch_threads in lockstep: half the cores);
- the evaluation: the same 100 held-out seeds, the same code (a checkpoint with a model preset
  acts through TrainedPolicy, sampling its actions).

What differs, and why it cannot be the same:
- frames and actions: the graph's frames cross DDS (agent, trainer) and its actions OSC
  (actuator -> world), and the trainer pairs each step's observation, action and agent/step by
  stamp: a part lost in transit drops that step (dropped pairs), and
  the trainer starts the actor's sequence afresh after the gap (new frame stack, a_{t-1} = 0,
  the unfinished rollout dropped). So the graph acts more steps than it trains on. The harness
  keeps every step in memory. That is what the graph is.
- policy lag: an agent acts up to 2 rollouts (256 steps) with one weights version while the
  trainer trains (wait_for_trainer), so PPO's data is about one version old (ppo/policy_lag) and
  the rewards come from the e3b encoder of the version the agent acted with; the harness acts
  on-policy (lag 0, the current encoder). The graph's acting and training overlap in time; the
  harness alternates them.
- rounds: the live trainer's round trains on every rollout waiting (two or more, up to 3 per
  actor when it falls behind: then more minibatches in that update); the harness's update is
  always the 2 x 128 steps.
- episodes: the live graph has no episodes, so neither its agent nor its trainer is told where
  Doom starts one: the frame stack, a_{t-1} and the e3b memory run on across it (the memory
  starts afresh every 500 steps only), and the transition into an episode's first frame is
  rewarded and trained on. The harness is told (pamiq train has no option to hide it): its
  stack, a_{t-1} and memory start afresh at each episode, and that transition earns 0 and is
  left out of e3b's training; with --horizon 500 its memory also starts afresh every 500 steps.
- spawns and sampling: the graph's worlds are ViZDoom seeds 0 and 1 (each later episode's spawn
  from the engine's own generator) and its agents sample with torch seeds 0 and 1 in their own
  processes; the harness's episodes take the seeds of training seed 0's block (1,000,000 + i),
  all its sampling one generator. Both kept apart from the evaluation's seeds 1000..1099.
- the end: the graph's trainer is paused at the first round boundary past --steps (its rounds
  vary in size), then the graph is stopped; the harness stops at its first update past --steps.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import benchlib
import yaml

benchlib.setup()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
import numpy as np  # noqa: E402
from pamiq.evaluation.bootstrap import bootstrap_mean, paired_difference  # noqa: E402
from pamiq.storage.checkpoint import list_checkpoints, read_checkpoint_counters  # noqa: E402
from pamiq.tools.graph import default_params_file  # noqa: E402
import rclpy  # noqa: E402
from rosgraph import Probe, free_udp_port, wait_until  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

ACTORS = 2
ROLLOUT = 128  # the live trainer's rollout_length (config/pamiq.yaml)
HORIZON = 500  # the agent's memory_horizon (config/pamiq.yaml)
SEED = 0  # the trainer's seed (config/pamiq.yaml); --seed gives another
FIRST_SEED = 1000  # pamiq eval's held-out spawns
THREADS = max(1, (os.cpu_count() or 1) // 2)  # the live trainer's torch_threads in lockstep
UP_ARGS = [
    'world:=doom', 'agent:=curiosity', 'real_time_factor:=0', f'actors:={ACTORS}',
    'model:=compact', 'reward:=e3b',
]  # fmt: skip

SAME = [
    'world: my_way_home, 160x120 frames, centre square -> compact 42x42 gray x 4 frames, '
    '3.5 tics per step, continuous axes (turn 120 deg/s), episodes of 2,100 tics (600 steps)',
    '2 worlds acting at once, one stream each (rollouts, reward normaliser, e3b memory)',
    'models: compact policy + e3b (ridge 10, inverse dynamics, lr 1e-4, 1 epoch of 256), '
    'initial weights from seed 0',
    'update: pamiq.learning.update.PolicyLearner.update (e3b on the transitions, per-stream '
    'reward normalisation, PPO BATCHED_PPO: clip 0.1, 3 epochs, ent 0.001, vf 0.5, grad norm '
    '0.5, gamma 0.99, lambda 0.95, minibatches of 256, policy lr 2.5e-4)',
    f'rollouts of {ROLLOUT} steps per stream: {ACTORS * ROLLOUT} samples per update',
    f'e3b memory starts afresh every {HORIZON} steps of a stream (memory_horizon; --horizon)',
    "steps trained on: the harness's --steps is the graph's count (the engine rounds it up to "
    'a whole update)',
    f'torch threads for training: {THREADS} (the live trainer in lockstep: half the cores)',
    'evaluation: the same held-out seeds and code (TrainedPolicy, sampled actions)',
]
DIFFERENT = [
    {
        'setting': 'frames and actions',
        'graph': 'frames over DDS, actions over OSC; steps paired by stamp, a late or lost part '
        'drops the step and the trainer starts that sequence afresh (its rollout so far dropped)',
        'harness': 'in memory, every step kept',
        'why': 'that is what the graph is',
    },
    {
        'setting': 'policy lag',
        'graph': 'an agent acts up to 2 rollouts with one weights version (wait_for_trainer), '
        'rewards from the e3b encoder of that version',
        'harness': 'on-policy (lag 0), the current encoder',
        'why': 'the graph acts while its trainer trains',
    },
    {
        'setting': 'update size',
        'graph': 'a round trains on every rollout waiting (2 or more)',
        'harness': f'always {ACTORS} x {ROLLOUT}',
        'why': "the live trainer's rounds follow the actors",
    },
    {
        'setting': 'episode starts',
        'graph': 'not told: frame stack, a_{t-1} and e3b memory run across them (memory reset '
        'every 500 steps only); the transition into a first frame is rewarded and trained on',
        'harness': 'told: stack, a_{t-1} and memory start afresh (and every 500 steps), that '
        'transition earns 0 and is left out of e3b training',
        'why': 'the live graph has no episodes; pamiq train has no option to hide them',
    },
    {
        'setting': 'spawns and sampling',
        'graph': 'ViZDoom seeds 0 and 1 (later spawns from the engine), agents sample with '
        'torch seeds 0 and 1',
        'harness': "episode seeds 1,000,000 + i (training seed 0's block), one generator",
        'why': 'separate processes and engines; both apart from the eval seeds',
    },
    {
        'setting': 'the end',
        'graph': 'trainer paused at the first round boundary past --steps, then SIGINT',
        'harness': 'the first update past --steps',
        'why': "the live trainer's rounds vary in size",
    },
]


def tb_scalars(run_dir: str, tags: tuple[str, ...]) -> dict[str, list[float]]:
    """The trainer's TensorBoard scalars (one value per round)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(run_dir, 'tb'), size_guidance={'scalars': 0})
    events.Reload()
    have = events.Tags()['scalars']
    return {tag: [e.value for e in events.Scalars(tag)] if tag in have else [] for tag in tags}


def diagnostics(probe: Probe) -> dict[str, dict[str, str]]:
    """Each node's newest diagnostic values, by node name ('/pamiq/actor0/world')."""
    found: dict[str, dict[str, str]] = {}
    for array in reversed(probe.messages('/diagnostics')):
        for status in array.status:
            name = status.name.split(':')[0]
            if name not in found:
                found[name] = {pair.key: pair.value for pair in status.values}
    return found


def of_node(values: dict[str, dict[str, str]], node: str) -> list[dict[str, str]]:
    return [v for name, v in sorted(values.items()) if name.endswith('/' + node)]


def timed_out_waits(work: str) -> int:
    """How often an agent gave up waiting for newer weights (trainer_wait_timeout) in the graph's
    log: a stall of the whole lockstep graph, the trainer holding no full rollout of an actor."""
    path = os.path.join(work, 'graph_up.log')
    if not os.path.exists(path):
        return 0
    with open(path, errors='replace') as stream:
        return sum('no new weights for' in line for line in stream)


def set_trainer_active(node, active: bool) -> str:
    client = node.create_client(SetBool, '/pamiq/trainer/set_active')
    assert client.wait_for_service(timeout_sec=30.0), 'no trainer/set_active service'
    future = client.call_async(SetBool.Request(data=active))
    assert wait_until(future.done, 30.0), 'trainer/set_active did not answer'
    return future.result().message


def seeded_params(seed: int, work: str) -> list[str]:
    """pamiq up's arguments for training seed `seed`: none for the shipped seeds (0), else a copy
    of the shipped parameters with the trainer's initial weights from `seed` and the worlds' and
    agents' seeds from ACTORS * seed on (actor i adds i), apart from every other seed's."""
    if seed == SEED:
        return []
    with open(default_params_file()) as stream:
        params = yaml.safe_load(stream)
    params['/**/trainer']['ros__parameters']['seed'] = seed
    for node in ('world', 'agent'):
        params[f'/**/{node}']['ros__parameters']['seed'] = ACTORS * seed
    path = os.path.join(work, 'params.yaml')
    with open(path, 'w') as stream:
        yaml.safe_dump(params, stream)
    return [f'params_file:={path}']


def run_graph(steps: int, work: str, timeout: float, seed: int) -> dict:
    run_dir = os.path.join(work, 'graph_run')
    shutil.rmtree(run_dir, ignore_errors=True)  # a graph run is not resumed: it starts afresh
    os.makedirs(run_dir)
    command = [sys.executable, '-m', 'pamiq.tools.cli', 'up', '--supervise', '--quiet']
    command += [*UP_ARGS, f'osc_port:={free_udp_port() - 2 * ACTORS}', f'run_dir:={run_dir}']
    command += seeded_params(seed, work)
    print(' '.join(command[2:]), flush=True)
    probe = Probe()
    log = open(os.path.join(work, 'graph_up.log'), 'w')
    started = time.monotonic()
    up = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
    stopped = False
    try:
        trained, rounds, last_print = 0.0, 0, 0.0
        while trained < steps:
            time.sleep(3.0)
            assert up.poll() is None, f'pamiq up ended (rc {up.returncode}): see graph_up.log'
            assert time.monotonic() - started < timeout, f'not {steps} steps in {timeout:.0f} s'
            if os.path.isdir(os.path.join(run_dir, 'tb')):
                samples = tb_scalars(run_dir, ('update/samples',))['update/samples']
                trained, rounds = sum(samples), len(samples)
            if time.monotonic() - last_print >= 60.0:
                last_print = time.monotonic()
                seconds = last_print - started
                print(
                    f'graph: {rounds} rounds, {trained:.0f}/{steps} steps trained, '
                    f'{seconds:.0f} s, {trained / seconds:.0f} steps/s',
                    flush=True,
                )
        trained_at = time.monotonic()
        # The worlds' diagnostics first, while they step: on simulated time a world that waits
        # for its agent (which waits for the paused trainer's weights) reports nothing.
        probe.record(DiagnosticArray, '/diagnostics', 1000)
        every = lambda: (
            len(of_node(diagnostics(probe), 'world')) == ACTORS
            and of_node(diagnostics(probe), 'trainer')
        )
        assert wait_until(every, 60.0, 0.5), 'not every world and the trainer reported'
        worlds = of_node(diagnostics(probe), 'world')
        print(f'graph: {set_trainer_active(probe, False)}', flush=True)
        probe.clear('/diagnostics')

        # The round in progress ends; then the trainer's diagnostics (on wall time) say no
        # round is running and count every round TensorBoard has.
        def settled() -> bool:
            trainer = of_node(diagnostics(probe), 'trainer')
            logged = len(tb_scalars(run_dir, ('update/samples',))['update/samples'])
            return bool(trainer) and (
                float(trainer[0].get('round in progress (s)', 1)) == 0.0
                and int(trainer[0]['rounds']) == logged
            )

        assert wait_until(settled, 120.0, 1.0), 'the trainer did not settle after its pause'
        trainer = of_node(diagnostics(probe), 'trainer')[0]
        paused_s = time.monotonic() - trained_at
        up.send_signal(signal.SIGINT)
        up.wait(180)
        stopped = True
    finally:
        if not stopped and up.poll() is None:
            up.send_signal(signal.SIGINT)
            up.wait(180)
        log.close()
        probe.close()
    wall_s = trained_at - started
    checkpoint = list_checkpoints(run_dir)[0]
    counters = read_checkpoint_counters(checkpoint)
    tb = tb_scalars(run_dir, ('update/samples', 'ppo/policy_lag', 'update/actors'))
    samples = tb['update/samples']
    assert int(counters['rounds']) == len(samples), (
        f'the checkpoint has {counters["rounds"]} rounds, TensorBoard {len(samples)}'
    )
    return {
        'command': 'pamiq up ' + ' '.join(command[4:]),
        'return_code': up.returncode,
        'checkpoint': checkpoint,
        'steps_trained': int(sum(samples)),
        'rounds': len(samples),
        'rounds_over_two_rollouts': int(sum(s > ACTORS * ROLLOUT for s in samples)),
        'steps_acted': int(sum(float(w['simulated steps']) for w in worlds)),
        'steps_received_by_trainer': int(counters['samples']),
        'dropped_pairs': int(counters.get('dropped_pairs', 0)),
        'sequence_gaps': int(counters['gaps']),
        'stale_rollouts': int(counters['stale']),
        'rollouts_skipped': int(float(trainer['rollouts skipped (trainer behind)'])),
        'policy_lag_mean': float(np.mean(tb['ppo/policy_lag'])),
        'agent_waits_timed_out': timed_out_waits(work),
        'wall_s': wall_s,
        'steps_trained_per_s': sum(samples) / wall_s,
        'seconds_to_pause_and_settle': paused_s,
    }


def run_harness(steps: int, work: str, seed: int) -> dict:
    out = os.path.join(work, 'harness_run')
    command = [
        os.path.join(os.path.dirname(sys.executable), 'pamiq'), 'train', '--world', 'doom',
        '--envs', str(ACTORS), '--steps', str(steps), '--reward', 'e3b', '--model', 'compact',
        '--world-action-space', 'continuous', '--rollout-length', str(ROLLOUT),
        '--horizon', str(HORIZON), '--seed', str(seed), '--threads', str(THREADS),
        '--out', out,
    ]  # fmt: skip
    print(' '.join(command[1:]), flush=True)
    with open(os.path.join(work, 'harness_train.log'), 'a') as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    with open(os.path.join(out, 'summary.json')) as stream:
        summary = json.load(stream)
    return {
        'command': 'pamiq ' + ' '.join(command[1:]),
        'checkpoint': list_checkpoints(out)[0],
        'steps_trained': summary['steps_done'],
        'updates': summary['updates'],
        'steps_acted': summary['steps_done'],
        'training_episodes': summary['episodes'],
        'training_cells_last_100': summary['mean_cells_last_100'],
        'wall_s': summary['wall_seconds'],
        'steps_trained_per_s': summary['steps_per_second'],
    }


def run_eval(graph: dict, harness: dict, episodes: int, work: str, max_steps: int | None) -> dict:
    out = os.path.join(work, 'eval')
    command = [
        os.path.join(os.path.dirname(sys.executable), 'pamiq'), 'eval',
        '--checkpoint', graph['checkpoint'], harness['checkpoint'], '--policies', 'random',
        '--episodes', str(episodes), '--first-seed', str(FIRST_SEED),
        '--action-space', 'continuous', '--out', out,
    ]  # fmt: skip
    if max_steps:
        command += ['--max-steps', str(max_steps)]  # smoke runs only
    print(' '.join(command[1:]), flush=True)
    with open(os.path.join(work, 'eval.log'), 'w') as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    with open(os.path.join(out, 'eval.json')) as stream:
        result = json.load(stream)
    by_role = {}
    for name, body in result['methods'].items():
        role = 'random'
        if graph['checkpoint'] in body['description']:
            role = 'graph'
        elif harness['checkpoint'] in body['description']:
            role = 'harness'
        by_role[role] = {
            'name': name,
            'summary': body['summary'],
            'cells': [e['cells'] for e in body['episodes']],
            'seeds': [e['seed'] for e in body['episodes']],
        }
    assert set(by_role) == {'graph', 'harness', 'random'}, sorted(by_role)
    return {'command': 'pamiq ' + ' '.join(command[1:]), 'methods': by_role}


def part(path: str, make) -> dict:
    """The part's saved result, or make it and save it."""
    if os.path.exists(path):
        with open(path) as stream:
            print(f'{os.path.basename(path)}: done already', flush=True)
            return json.load(stream)
    result = make()
    with open(path, 'w') as stream:
        json.dump(result, stream, indent=1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=100_000, help='agent steps trained on')
    parser.add_argument('--episodes', type=int, default=100, help='evaluation episodes')
    parser.add_argument('--work', default='runs/harness_vs_graph', help='run directories')
    parser.add_argument('--graph-timeout', type=float, default=4 * 3600.0, help='s')
    parser.add_argument('--max-steps', type=int, default=None, help='eval: smoke runs only')
    parser.add_argument(
        '--seed', type=int, default=SEED,
        help="training seed of both sides: the trainer's and pamiq train's initial weights",
    )  # fmt: skip
    parser.add_argument('--name', default='harness_vs_graph')
    args = parser.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    rclpy.init()
    try:
        graph = part(
            os.path.join(work, 'graph.json'),
            lambda: run_graph(args.steps, work, args.graph_timeout, args.seed),
        )
    finally:
        rclpy.try_shutdown()
    harness = part(
        os.path.join(work, 'harness.json'),
        lambda: run_harness(graph['steps_trained'], work, args.seed),
    )
    evaluation = part(
        os.path.join(work, 'eval.json'),
        lambda: run_eval(graph, harness, args.episodes, work, args.max_steps),
    )
    graph.setdefault('agent_waits_timed_out', timed_out_waits(work))
    methods = evaluation['methods']
    cells = {role: np.asarray(m['cells'], float) for role, m in methods.items()}
    assert methods['graph']['seeds'] == methods['harness']['seeds'] == methods['random']['seeds']
    intervals = {role: bootstrap_mean(c) for role, c in cells.items()}
    overlap = (
        intervals['graph'].low <= intervals['harness'].high
        and intervals['harness'].low <= intervals['graph'].high
    )
    difference = paired_difference(cells['graph'], cells['harness'])
    ratios = {
        role: methods[role]['summary']['cells_ratio_to_random'] for role in ('graph', 'harness')
    }
    rows = []
    for role, runs in (('graph', graph), ('harness', harness), ('random', None)):
        text = f'{intervals[role].text(1)} cells/episode'
        if runs is not None:
            r = ratios[role]
            text += (
                f', {r["value"]:.2f}x random [{r["low"]:.2f}, {r["high"]:.2f}]; '
                f'{runs["steps_trained"]} steps trained ({runs["steps_acted"]} acted) '
                f'in {runs["wall_s"] / 60:.1f} min ({runs["steps_trained_per_s"]:.0f} steps/s)'
            )
        rows.append((role, text))
    rows.append(('intervals overlap (acceptance)', 'yes' if overlap else 'NO'))
    rows.append(('graph - harness, paired', f'{difference.text(1)} cells/episode'))
    rows.append(
        (
            'graph: losses',
            f'{graph["dropped_pairs"]} dropped pairs, {graph["sequence_gaps"]} sequence gaps, '
            f'{graph["stale_rollouts"]} stale rollouts, {graph["rollouts_skipped"]} skipped, '
            f'{graph["agent_waits_timed_out"]} waits for weights timed out; '
            f'policy lag {graph["policy_lag_mean"]:.2f} versions; '
            f'{graph["rounds_over_two_rollouts"]} of {graph["rounds"]} rounds over '
            f'{ACTORS} rollouts',
        )
    )
    data = {
        'command': benchlib.command_line('bench/harness_vs_graph.py', args),
        'steps': args.steps,
        'seed': args.seed,
        'episodes': len(cells['graph']),
        'first_seed': FIRST_SEED,
        'eval_max_steps': args.max_steps,
        'cells': {
            role: {**intervals[role].as_dict(), 'per_episode': cells[role].tolist()}
            for role in cells
        },
        'cells_ratio_to_random': ratios,
        'intervals_overlap': overlap,
        'graph_minus_harness_paired': difference.as_dict(),
        'graph': graph,
        'harness': harness,
        'eval_command': evaluation['command'],
        'same': SAME,
        'different': DIFFERENT,
    }
    # Paths relative to the repository, as the commands are typed there.
    data = json.loads(json.dumps(data).replace(benchlib.REPO + os.sep, ''))
    benchlib.report(args.name, rows, data)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
