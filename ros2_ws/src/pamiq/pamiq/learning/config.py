"""The learning configuration: model choice, PPO and the learner's round sizes.

No torch here, so the `pamiq` command can read defaults without loading it. The fields made
with `setting` are the trainer's (and for the model choice also the agent's) ROS parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pamiq.settings import setting
from pamiq.vocabulary import (
    ACTION_SPACES,
    DEFAULT_SENSES,
    DEVICES,
    ENCODERS,
    MODEL_PRESETS,
    REWARDS,
)


def encoder_setting():
    """The `encoder` parameter, shared by the agent and the trainer (they must agree)."""
    return setting(
        ENCODERS[0], 'What trains the embedding (agent and trainer must agree)', choices=ENCODERS
    )


def action_space_setting():
    """The `action_space` parameter, shared by the agent and the trainer (they must agree)."""
    return setting(
        ACTION_SPACES[0],
        "'continuous': 3 VRChat axes; 'discrete': the (3,3,3,2,2) buttons "
        '(agent and trainer must agree)',
        choices=ACTION_SPACES,
    )


def model_setting():
    """The `model` parameter (the vision preset), shared by the agent and the trainer."""
    return setting(
        MODEL_PRESETS[0],
        "'original': 84x84 RGB, the original's CNN; 'compact': 42x42 gray, 4 frames "
        '(agent and trainer must agree)',
        choices=MODEL_PRESETS,
    )


def reward_setting():
    """The `reward` parameter (the intrinsic reward plug-in), shared by agent and trainer."""
    return setting(
        REWARDS[0],
        'The intrinsic reward (pamiq.learning.rewards; the oracles need the true pose and are '
        'for pamiq train only; agent and trainer must agree)',
        choices=REWARDS,
    )


def memory_horizon_setting():
    """The `memory_horizon` parameter: the live graph's stand-in for an episode."""
    return setting(
        500,
        'Steps a within-episode reward (e3b) remembers before it starts afresh: the live graph '
        'has no episodes (0: never forget)',
        low=0,
        high=2**31 - 1,
    )


def recurrent_setting():
    """The `recurrent` parameter: the policy's GRU state, shared by the agent and the trainer."""
    return setting(
        False,
        'The policy carries a state from step to step (a GRU after its trunk), started afresh '
        'every memory_horizon steps; plug-in path only (agent and trainer must agree)',
    )


RECURRENT_NEEDS_PLUGINS = (
    'a recurrent policy needs the plug-in path: model compact, or a reward other than '
    'prediction_error'
)


def uses_plugins(model: str, reward: str) -> bool:
    """Whether a (model, reward) pair runs on the plug-in path (pamiq.learning.update) rather
    than the original's Learner and CuriosityPolicy, which stay for ('original',
    'prediction_error')."""
    return (model, reward) != ('original', 'prediction_error')


def senses_setting():
    """The `senses` parameter, shared by the agent and the trainer (they must agree)."""
    return setting(
        ','.join(DEFAULT_SENSES),
        'What the agent perceives: any of vision, hearing, body, comma-separated '
        '(agent and trainer must agree)',
    )


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters: the original's values, plus CleanRL's grad clipping and Adam ε."""

    # No learning-rate annealing (CleanRL's anneal_lr): learning never ends, so there is no
    # horizon to anneal over.
    gamma: float = 0.99
    """the discount factor γ"""
    gae_lambda: float = 0.95
    """the λ of generalised advantage estimation"""
    clip_coef: float = 0.1
    """the surrogate clipping coefficient (also clips the value change when clip_vloss)"""
    ent_coef: float = 0.001
    """coefficient of the entropy bonus"""
    vf_coef: float = 0.5
    """coefficient of the value loss (which has its own 0.5 factor, as CleanRL)"""
    max_grad_norm: float = 0.5
    """the maximum global norm for gradient clipping (the original had none)"""
    norm_adv: bool = True
    """normalise advantages per minibatch"""
    clip_vloss: bool = True
    """clip the value loss as the surrogate. The original used it; note that SB3 warns that value
    clipping depends on the reward scale (see RewardNormalizer) and leaves it off by default"""
    target_kl: float | None = None
    """stop the update epochs early when approx_kl exceeds this (None: never)"""
    update_epochs: int = 3
    """the K epochs over each rollout"""
    num_minibatches: int = 16
    """minibatches per epoch; a minibatch is the update's steps / num_minibatches (CleanRL's
    rule): 8 for one 128-step rollout, the original's batch of 8; 16 for two actors' rollouts"""
    target_entropy: float | None = None
    """a floor under the policy's entropy (nats per action, the mean over each update): below it
    ent_coef rises after every update (SAC's automatic temperature rule applied to PPO's bonus),
    above it ent_coef returns towards its configured value, never lower; None keeps ent_coef
    fixed. Over the continuous axes the entropy is at most 3 log 2 = 2.08 nats (uniform)"""
    adam_eps: float = 1e-5
    """Adam's ε: CleanRL's 1e-5 (as openai/baselines), not PyTorch's 1e-8. The learning rate is
    the policy's entry in pamiq.learning.models.LEARNING_RATES, where every model's is."""


# The PPO settings of batched training (`pamiq train --world`, the plug-in rewards): the
# original's clip, epochs, gamma and lambda, and an entropy bonus of 0.001 (CleanRL's Atari 0.01
# at first). Chosen on training seeds 0 and 1 (docs/training.md): over the axes, at 2.5e5 steps on
# the held-out episodes, e3b covered 23.2 and 22.1 cells with 0.001 and 16.4 (both seeds) with
# 0.01, while the zero-reward control stayed near random with either (19.6 and 12.6; 16.2); over
# the buttons at 1e5 steps 0.001 was as good or better for e3b and the episodic oracle.
BATCHED_PPO = PPOConfig(ent_coef=0.001, clip_coef=0.1, update_epochs=3)
# The policy's learning rate there: CleanRL's Atari PPO (LearnerConfig's 1e-4 trains 1 actor).
BATCHED_POLICY_LEARNING_RATE = 2.5e-4


@dataclass(frozen=True)
class LearnerConfig:
    model: str = model_setting()
    reward: str = reward_setting()
    memory_horizon: int = memory_horizon_setting()
    recurrent: bool = recurrent_setting()
    encoder: str = encoder_setting()
    action_space: str = action_space_setting()
    senses: str = senses_setting()
    device: str = setting(
        DEVICES[0],
        "Where the trainer's tensors live ('auto': CUDA when available)",
        choices=DEVICES,
    )
    dynamics_buffer_size: int = 2048
    """Transitions (a_{t-1}, o_t, a_t, o_{t+1}) kept for the encoder and forward dynamics."""
    rollout_length: int = setting(
        128, "Consecutive steps per PPO rollout (the original's num_steps)", low=8, high=4096
    )
    batch_size: int = setting(
        32,
        'Minibatch size of the encoder and forward-dynamics updates, per actor in the round',
        low=1,
        high=1024,
    )
    encoder_batches: int = setting(
        32, 'Encoder minibatches per rollout trained (n actors: 1/n as many)', low=0, high=10000
    )
    dynamics_batches: int = setting(
        64,
        'Forward-dynamics minibatches per rollout trained (n actors: 1/n as many)',
        low=0,
        high=10000,
    )
    min_buffer_size: int = setting(
        64,
        'Transitions needed before the encoder and forward dynamics train at all',
        low=1,
        high=100000,
    )
    concurrent_updates: bool = setting(
        False,
        'Train the encoder and forward model on a thread of their own while PPO trains (the '
        'same updates; torch_threads threads each, both shares for the one left running)',
    )
    """Off in real time, where a round has seconds and a second core is the actors'. Under
    simulated time `pamiq up` and the launch file turn it on with half the cores each: on 2
    cores one thread per update trained two actors' 256 steps in 1.46 s for 10.0 ms of CPU per
    step, where one update at a time on two threads took 1.85 s and 14.3 ms (intra-op threads
    on these small models mostly wait for each other)."""
    max_policy_lag: int = 8
    """Steps acted by a policy this many versions older than the trainer's are not used for PPO."""
    normalize_reward: bool = setting(
        True, 'Divide rewards by the running std of their discounted sum (large-scale curiosity)'
    )
    """The original did not, but its rewards were tiny (~0.005); with a layer-normalised
    embedding they are ~0.3 and the unnormalised returns (~30) swamp PPO's value loss."""
    encoder_rounds: int = setting(
        5,
        'Rounds the encoder learns before it is frozen (0: never frozen)',
        low=0,
        high=2**31 - 1,
    )
    """The encoder learns in the first this many rounds and is frozen after them, so the forward
    model and the curiosity reward stop chasing a moving embedding: with the encoder learning
    throughout (the original) the forward-dynamics loss rose 0.10 -> 0.38 over 10 minutes, with
    it frozen after 5 rounds it fell 0.10 -> 0.06 on the same data. Burda et al. (2018) found
    fixed features stable for curiosity. 0: it never stops learning."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
