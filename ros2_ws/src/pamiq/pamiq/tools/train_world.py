"""`pamiq train --world doom`: the batched training engine's command line (pamiq.learning.engine).

    pamiq train --world doom --envs 16 --steps 500000 --reward e3b --seed 0 --out runs/e3b_s0

Run it again with the same options to resume after an interruption; a larger --steps extends a
finished run. Progress goes to stdout, scalars to OUT/tensorboard, every episode to
OUT/episodes.jsonl, and OUT/summary.json at the end.
"""

from __future__ import annotations

import argparse
from dataclasses import fields, replace

from pamiq.learning.config import BATCHED_PPO
from pamiq.learning.train_config import TrainConfig
from pamiq.vocabulary import ACTION_SPACES, DEVICES, MODEL_PRESETS, REWARDS, WORLDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The engine's options (defaults from TrainConfig, the one home of each)."""
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.name != 'ppo'}
    group = parser.add_argument_group('training in a built-in world (--world)')
    group.add_argument('--world', choices=[w for w in WORLDS if w == 'doom'], help='train in it')
    group.add_argument('--out', help='run directory: checkpoints, episodes, TensorBoard')
    group.add_argument('--steps', type=int, default=defaults['steps'], help='agent steps in all')
    group.add_argument('--envs', type=int, default=defaults['envs'], help='worlds at once')
    group.add_argument('--reward', choices=REWARDS, default=defaults['reward'])
    group.add_argument('--model', choices=MODEL_PRESETS, default=defaults['model'])
    group.add_argument(
        '--world-action-space',
        dest='world_action_space',
        choices=ACTION_SPACES,
        default=defaults['action_space'],
        help='the action space trained in the world',
    )
    group.add_argument(
        '--rollout-length',
        type=int,
        default=defaults['rollout_length'],
        help='steps per world per update',
    )
    group.add_argument(
        '--horizon', type=int, default=defaults['horizon'],
        help="the reward's within-episode memory also starts afresh every this many steps of a "
        "world, as the live agent's memory_horizon does (0: at episode starts only)",
    )  # fmt: skip
    group.add_argument(
        '--checkpoint-every', type=int, default=defaults['checkpoint_every'], help='updates'
    )
    group.add_argument('--episode-tics', type=int, default=None, help='shorter episodes (tests)')
    group.add_argument(
        '--lr', type=float, default=defaults['learning_rate'], help="the policy's learning rate"
    )
    group.add_argument(
        '--anneal-lr', action='store_true',
        help="the policy's learning rate falls linearly to 0 at --steps (default: constant)",
    )  # fmt: skip
    group.add_argument(
        '--reward-lr', type=float, default=defaults['reward_learning_rate'],
        help="the reward models' learning rate (0: each reward's own)",
    )  # fmt: skip
    group.add_argument(
        '--reward-input', action='store_true',
        help='the policy also sees the intrinsic reward it earned a step ago (NGU); pamiq eval '
        'computes it too, the live graph does not yet',
    )  # fmt: skip
    group.add_argument(
        '--recurrent', action='store_true',
        help='the policy carries a state through the episode (a GRU after its trunk); pamiq '
        'eval acts with it too, the live graph does not yet',
    )  # fmt: skip
    group.add_argument(
        '--ppo-epochs', type=int, default=BATCHED_PPO.update_epochs, help='PPO epochs per update'
    )
    group.add_argument(
        '--ent-coef', type=float, default=BATCHED_PPO.ent_coef,
        help="PPO's entropy coefficient (with --target-entropy: its least value)",
    )  # fmt: skip
    group.add_argument(
        '--target-entropy', type=float, default=BATCHED_PPO.target_entropy,
        help="a floor under the policy's entropy, in nats: below it the entropy coefficient "
        'rises after each update (none: the coefficient stays fixed)',
    )  # fmt: skip
    group.add_argument(
        '--threads', type=int, default=0, help="torch's CPU threads (0: torch's choice)"
    )
    group.add_argument(
        '--world-processes', type=int, default=defaults['world_processes'],
        help='processes the games step in (0: this one; -1: one per core, at most --envs)',
    )  # fmt: skip


def train_world(args: argparse.Namespace) -> int:
    import torch

    from pamiq.learning.engine import Trainer

    if not args.out:
        raise ValueError('--world needs --out (the run directory)')
    if args.device not in DEVICES:
        raise ValueError(f'--device must be one of {DEVICES}')
    if args.horizon < 0:
        raise ValueError(f'--horizon must be at least 0, got {args.horizon}')
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(
        steps=args.steps,
        envs=args.envs,
        seed=args.seed,
        reward=args.reward,
        model=args.model,
        action_space=args.world_action_space,
        rollout_length=args.rollout_length,
        device=args.device,
        checkpoint_every=args.checkpoint_every,
        episode_tics=args.episode_tics,
        horizon=args.horizon,
        learning_rate=args.lr,
        anneal_learning_rate=args.anneal_lr,
        reward_learning_rate=args.reward_lr,
        reward_input=args.reward_input,
        recurrent=args.recurrent,
        ppo=replace(
            BATCHED_PPO,
            update_epochs=args.ppo_epochs,
            ent_coef=args.ent_coef,
            target_entropy=args.target_entropy,
        ),
        world_processes=args.world_processes,
    )
    summary = Trainer(config, args.out, lambda line: print(line, flush=True)).run()
    print(
        f'{summary["steps_done"]} steps, {summary["episodes"]} episodes, '
        f'{summary["mean_cells_last_100"]:.1f} cells/episode over the last 100; '
        f'wrote {args.out}/summary.json'
    )
    return 0
