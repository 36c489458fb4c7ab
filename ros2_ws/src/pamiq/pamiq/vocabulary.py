"""The names and sizes pamiq's parts agree on, in one place.

Plain Python: the nodes, the learning code, the tools and the tests all read them here, so an
action space, an encoder or a loss is spelled once.
"""

from __future__ import annotations

# How actions are chosen (`agent:=` at launch, the agent's `policy` parameter); first = default.
POLICIES = ('curiosity', 'random')
# The training-free policies `pamiq eval` measures exploration against (issue 12's baselines).
EVAL_BASELINES = ('random', 'forward_turn')
# Where the agent lives (`world:=` at launch); first = default.
WORLDS = ('doom', 'vrchat')
# What a host runs (`role:=` at launch): everything, the trainer only, or actors only.
ROLES = ('all', 'trainer', 'actor')
# What trains the embedding (agent and trainer must agree); first = default.
ENCODERS = ('inverse_dynamics', 'vae')
# 'continuous': 3 VRChat axes; 'discrete': the original's (3, 3, 3, 2, 2) buttons. First = default.
ACTION_SPACES = ('continuous', 'discrete')
# What the agent perceives (`senses:=` at launch, any non-empty subset, comma-separated).
# 'vision' alone is the default until the evaluation says otherwise.
SENSES = ('vision', 'hearing', 'body')
DEFAULT_SENSES = ('vision',)
# The vision model (`model:=`): the original's 84x84 RGB CNN, or the exploration literature's
# compact 42x42 grayscale, 4-frame trunk (pamiq.learning.presets). First = default.
MODEL_PRESETS = ('original', 'compact')
# The intrinsic rewards (`reward:=`), each a plug-in of pamiq.learning.rewards. First = default.
REWARDS = (
    'prediction_error',
    'rnd',
    'e3b',
    'e3b_rnd',
    'place_count',
    'zero',
    'oracle_count',
    'oracle_lifelong_count',
)
# Where the trainer's tensors live ('auto': CUDA when available). First = default.
DEVICES = ('auto', 'cpu', 'cuda')

CONTINUOUS_ACTION_DIM = 3
# The original's discrete action space: (MoveVertical, MoveHorizontal, LookHorizontal, Jump,
# Run), the number of choices of each.
DISCRETE_ACTION_CHOICES = (3, 3, 3, 2, 2)

# o_t: the centre square of a frame, resized to OBSERVATION_SIZE x OBSERVATION_SIZE RGB.
OBSERVATION_SIZE = 84
FRAME_SHAPE = (OBSERVATION_SIZE, OBSERVATION_SIZE, 3)  # uint8 HWC, as on agent/observation
OBSERVATION_SHAPE = (3, OBSERVATION_SIZE, OBSERVATION_SIZE)  # float CHW, as the networks read
EMBEDDING_DIM = 512


def parse_senses(text: str) -> tuple[str, ...]:
    """'vision,hearing' -> ('vision', 'hearing'), in SENSES order, each once.

    Raises:
        ValueError: An unknown sense, or none at all.
    """
    names = [name.strip() for name in text.split(',') if name.strip()]
    unknown = sorted(set(names) - set(SENSES))
    if unknown:
        raise ValueError(f'unknown sense(s) {", ".join(unknown)}; known: {", ".join(SENSES)}')
    if not names:
        raise ValueError(f'no sense given; choose from {", ".join(SENSES)}')
    return tuple(sense for sense in SENSES if sense in names)


# The trained networks, as named in weights blobs and checkpoints.
MODEL_NAMES = ('encoder', 'forward_dynamics', 'policy')

# What ppo_update reports per update (and the trainer publishes on trainer/ppo/<name>).
PPO_STATS = (
    'loss',
    'policy_loss',
    'value_loss',
    'entropy',
    'approx_kl',
    'old_approx_kl',
    'clipfrac',
    'grad_norm',
    'explained_variance',
    'first_epoch_max_ratio_error',
)
# The headline loss of each model, as the status line, reports and bags show them.
MODEL_LOSSES = tuple(f'{e}/loss' for e in ENCODERS) + ('forward_dynamics/loss', 'ppo/loss')


def round_metrics(encoder: str) -> tuple[str, ...]:
    """Every value one training round reports, each published on trainer/<name>.

    'update/actors' and 'update/samples' say what the round's PPO update held: how many actors'
    rollouts, how many steps in all.
    """
    if encoder not in ENCODERS:
        raise ValueError(f'encoder must be one of {ENCODERS}, got {encoder!r}')
    return (
        f'{encoder}/loss',
        'forward_dynamics/loss',
        *(f'ppo/{name}' for name in PPO_STATS),
        'ppo/policy_lag',
        'reward/mean',
        'update/actors',
        'update/samples',
    )


# The agent's diagnostics carry its mean reward: `pamiq up`'s status line reads it there rather
# than take agent/reward, a message per step, for one number every few seconds.
REWARD_WINDOW = 50
REWARD_KEY = f'reward, mean of the last {REWARD_WINDOW} steps'

# agent/step's fields that hold a recurrent policy's state before o_t: state_0, state_1, ...
STATE_FIELD_PREFIX = 'state_'
