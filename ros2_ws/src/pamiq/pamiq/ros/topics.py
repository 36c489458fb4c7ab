"""The graph's topic and service names, relative to the namespace (the contract of
docs/architecture.md), and the one way a full name is matched against a relative one."""

from __future__ import annotations

IMAGE = 'camera/image_raw'
OBSERVATION = 'agent/observation'
ACTION = 'action'
STEP = 'agent/step'
REWARD = 'agent/reward'
CMD_VEL = 'cmd_vel'
WEIGHTS = 'trainer/weights'
POSE = 'world/pose'
DIAGNOSTICS = '/diagnostics'
AUDIO_PCM = 'audio/pcm'  # what the agent hears: 100 ms chunks (pamiq.media.audio's format)
AUDIO_LEVEL = 'audio/level'  # loudness of each chunk (dBFS), for rqt_plot
AUDIO_FORMAT = 'audio/format'  # the stream's format, latched
BODY_STATE = 'body/state'  # the avatar parameters the body sense holds, as a named vector
BODY_TWIST = 'body/twist'  # the avatar's velocity (REP 103: x forward, y left, z up)
AGENT_HEARING = 'agent/hearing'  # the log-mel spectrogram the agent heard at a frame
AGENT_BODY = 'agent/body'  # the body vector the agent felt at a frame
CLOCK = '/clock'  # simulated time, from a lockstep or faster-than-real-time world

AGENT_SET_ACTIVE = 'agent/set_active'
TRAINER_SET_ACTIVE = 'trainer/set_active'
TRAINER_SAVE = 'trainer/save'
WORLD_RESET = 'world/reset'


def trainer_metric(name: str) -> str:
    """The topic of one value a training round reports, e.g. 'trainer/ppo/approx_kl'."""
    return f'trainer/{name}'


def matches(topic: str, name: str) -> bool:
    """True when `topic` (a full name such as '/pamiq/agent/step') is `name`.

    `name` is either full ('/pamiq/agent/step') or relative to any namespace ('agent/step').
    """
    if name.startswith('/'):
        return topic == name
    return topic == name or topic.endswith('/' + name)


def actor_of(topic: str, name: str) -> str:
    """The namespace a full topic name belongs to, for the relative `name` it ends in:
    actor_of('/pamiq/actor1/agent/step', 'agent/step') == '/pamiq/actor1'."""
    if not matches(topic, name):
        raise ValueError(f'{topic} is not {name}')
    return topic[: -len(name)].rstrip('/')


def namespaced(namespace: str, name: str) -> str:
    """The full name of a relative topic or service in `namespace` ('pamiq', 'action')."""
    if name.startswith('/'):
        return name
    namespace = namespace.strip('/')
    return f'/{namespace}/{name}' if namespace else f'/{name}'
