"""Does curiosity do something? Map coverage of my_way_home, curiosity-PPO against random.

Method: the same number of 0.1 s steps (4 Doom tics each, as the live world advances) for each
agent and seed, episodes of my_way_home as the world node plays them (new episode on timeout or
goal). The curiosity agent acts with CuriosityPolicy and learns with the trainer's Learner every
rollout, synchronously (like the original, so the run is not bound to real time); the random
agent samples tanh(N(0,1)). Coverage = distinct 64x64 map cells visited, from the pose the world
node publishes on world/pose. Then the novelty check: the trained curiosity models' mean reward
on new frames of the maze against frames of five rooms never seen (other bundled scenarios).

    .venv/bin/python bench/curiosity_vs_random.py [--steps 10000] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import benchlib
import numpy as np
import torch

sys.path.insert(0, os.path.join(benchlib.REPO, 'tests'))
from doom_frames import record
from pamiq.doom.game import TICRATE, doom_command, make_game
from pamiq.learning.curiosity import curiosity_reward
from pamiq.learning.curiosity_policy import CuriosityPolicy
from pamiq.learning.learner import Learner, LearnerConfig, Step
from pamiq.learning.models import action_features
from pamiq.learning.random_policy import RandomPolicy
from pamiq.learning.vision import observations_to_tensor
from pamiq.media.preprocessing import preprocess

CELL = 64.0


def run(agent: str, steps: int, seed: int) -> dict:
    torch.manual_seed(seed)
    learner = Learner(LearnerConfig(), seed) if agent == 'curiosity' else None
    policy = (
        CuriosityPolicy('inverse_dynamics', 'continuous', seed)
        if agent == 'curiosity'
        else RandomPolicy('continuous', seed)
    )
    cells, goals, episodes = set(), 0, 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as engine_dir:
        game = make_game('my_way_home', '160x120', seed, engine_dir)
        for index in range(steps):
            state = game.get_state()
            x, y, _ = state.game_variables[:3]
            cells.add((int(x // CELL), int(y // CELL)))
            observation = preprocess(state.screen_buffer)
            result = policy.step(observation)
            action = result.action
            if learner is not None:
                learner.add(
                    Step(
                        index,
                        observation,
                        action,
                        result.reward,
                        result.value,
                        result.log_prob,
                        result.version,
                    )
                )
                if learner.ready():
                    learner.train_round()
                    policy.load_state_dict(learner.weights_state())
            command = doom_command(
                dict(zip(('Vertical', 'Horizontal', 'LookHorizontal'), map(float, action))),
                120.0 / TICRATE,
            )
            for _ in range(4):
                game.set_action(command)
                game.advance_action(1)
                if game.is_episode_finished():
                    goals += int(
                        game.get_total_reward() > 0.5
                    )  # the vest gives +1; timeout does not
                    game.new_episode()
                    episodes += 1
                    policy.reset()
                    break
        game.close()
    return {
        'agent': agent,
        'seed': seed,
        'cells': len(cells),
        'episodes': episodes,
        'goals': goals,
        'seconds': time.monotonic() - started,
        'learner': learner,
    }


# Bundled scenarios the agent never sees (each survives 100 random steps), from plain rooms to
# busy arenas: a prediction-error reward is not guaranteed to be higher in all of them.
UNSEEN_ROOMS = ('basic', 'defend_the_center', 'defend_the_line', 'predict_position', 'deathmatch')


def mean_reward(learner: Learner, observations: np.ndarray, actions: np.ndarray) -> float:
    encoder, dynamics = learner.models['encoder'], learner.models['forward_dynamics']
    with torch.no_grad():
        z = encoder.embed(observations_to_tensor(observations))
        a = action_features(torch.as_tensor(actions), 'continuous')
        previous = torch.cat([torch.zeros_like(a[:1]), a[:-1]])
        return float(curiosity_reward(dynamics(previous, z[:-1], a), z[1:]).mean())


def novelty(learners: list[Learner]) -> dict[str, float]:
    """Mean curiosity reward (over the trained learners) on 100 new steps in the maze they
    learned in ('my_way_home') and on 100 steps in each room they never saw."""
    rewards = {}
    for scenario in ('my_way_home', *UNSEEN_ROOMS):
        observations, actions = record(scenario, 100, seed=99)
        rewards[scenario] = float(
            np.mean([mean_reward(learner, observations, actions) for learner in learners])
        )
    return rewards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=10000, help='steps of 0.1 s per run')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    results = []
    for seed in args.seeds:
        for agent in ('random', 'curiosity'):
            result = run(agent, args.steps, seed)
            print(
                f'{agent:>9} seed {seed}: {result["cells"]} cells, '
                f'{result["goals"]}/{result["episodes"]} episodes reached the goal '
                f'({result["seconds"]:.0f} s)',
                flush=True,
            )
            results.append(result)
    rewards = novelty([r['learner'] for r in results if r['agent'] == 'curiosity'])
    familiar = rewards.pop('my_way_home')
    summary = {}
    rows = []
    for agent in ('random', 'curiosity'):
        cells = [r['cells'] for r in results if r['agent'] == agent]
        goals = [r['goals'] for r in results if r['agent'] == agent]
        episodes = [r['episodes'] for r in results if r['agent'] == agent]
        summary[agent] = {'cells': cells, 'goals': goals, 'episodes': episodes}
        rows.append((f'{agent}: cells per seed (mean)', f'{cells} ({np.mean(cells):.1f})'))
        rows.append((f'{agent}: goals / episodes', f'{sum(goals)} / {sum(episodes)}'))
    rows.append(('novelty: reward in the maze (familiar)', f'{familiar:.3f}'))
    for room, reward in rewards.items():
        rows.append(
            (f'novelty: reward in unseen {room}', f'{reward:.3f} ({reward / familiar:.2f}x)')
        )
    higher = sum(reward > familiar for reward in rewards.values())
    rows.append(('novelty: unseen rooms above the maze', f'{higher} of {len(rewards)}'))
    rows.append(('steps per run, seeds', f'{args.steps}, {args.seeds}'))
    benchlib.report(
        'curiosity_vs_random',
        rows,
        {
            'steps': args.steps,
            'seeds': args.seeds,
            'cell_size': CELL,
            'summary': summary,
            'novelty': {'familiar': familiar, 'unseen': rewards},
        },
    )


if __name__ == '__main__':
    main()
