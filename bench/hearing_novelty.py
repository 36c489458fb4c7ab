"""Does hearing matter? The curiosity reward at the onset of a sound never heard before, against
the onset of a familiar one, for multimodal models trained on the Doom world's sounds.

Per seed: random continuous actions for --train-steps steps of `defend_the_center` (monsters
growl, attack and die; the player hurts) with vision, hearing and the body sense, exactly as
the graph perceives them (pamiq.doom.game's audio resampled to 16 kHz, the agent's log-mel window,
avatar parameters); the encoder (inverse dynamics) and the forward model learn from them
offline for --epochs passes (Learner.pretrain, as `pamiq train --from-bag`). Then, on a new
episode (seed + 1000) with its own sound, a 1 s sound is mixed into the stream at --onsets
evenly spaced steps, one onset at a time:

- familiar: the loudest second of the training episode's own sound (heard in training);
- novel: a two-tone bell (2.9 and 4.4 kHz, decaying) at the same loudness, never heard.

The measure is paired: the reward with the sound minus the reward of the same steps without
it, averaged over the sound's first second from its onset (the hearing window fills with it
over those 10 steps), for the fused reward and for the hearing share. Nothing is tuned here;
seeds are reported one by one.

    .venv/bin/python bench/hearing_novelty.py [--seeds 0 1 2] [--train-steps 3000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import benchlib

benchlib.setup()

import numpy as np  # noqa: E402
from pamiq.doom.game import (  # noqa: E402
    AUDIO_PER_TIC,
    AUDIO_RATE,
    TICRATE,
    avatar_parameters,
    doom_command,
    make_game,
)
from pamiq.learning.config import LearnerConfig  # noqa: E402
from pamiq.learning.hearing import LogMelStream  # noqa: E402
from pamiq.learning.learner import Learner, Step  # noqa: E402
from pamiq.learning.models import action_features  # noqa: E402
from pamiq.learning.multimodal import per_sense_rewards  # noqa: E402
from pamiq.learning.senses import model_inputs  # noqa: E402
from pamiq.media.audio import SAMPLE_RATE, Resampler, level_dbfs, to_int16  # noqa: E402
from pamiq.media.preprocessing import preprocess  # noqa: E402
import torch  # noqa: E402

SENSES = ('vision', 'hearing', 'body')
AXES = ('Vertical', 'Horizontal', 'LookHorizontal')


def play(scenario: str, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Random actions; per step the frame, body, action and where the sound stream stood."""
    rng = np.random.default_rng(seed)
    frames, bodies, actions, marks, sound = [], [], [], [], []
    resampler = Resampler(AUDIO_RATE, SAMPLE_RATE, 2)
    heard = 0
    last_angle = None
    with tempfile.TemporaryDirectory() as engine_dir:
        game = make_game(scenario, '160x120', seed, engine_dir, timeout=10**6, audio=True)
        for step in range(steps):
            if game.is_episode_finished():
                game.new_episode()
            state = game.get_state()
            variables = state.game_variables
            turn = 0.0 if last_angle is None else ((variables[2] - last_angle + 180) % 360 - 180)
            last_angle = variables[2]
            body = avatar_parameters(
                tuple(variables[3:6]), variables[2], turn * 10, variables[6] > 0
            )
            frames.append(preprocess(state.screen_buffer))
            bodies.append([float(body[k]) for k in body])
            marks.append(heard)
            action = np.tanh(rng.standard_normal(3)).astype(np.float32)
            actions.append(action)
            tics = 4 if step % 2 else 3  # 3.5 tics: one step of 0.1 s
            game.set_action(doom_command(dict(zip(AXES, action.tolist())), 120.0 / TICRATE))
            game.advance_action(tics)
            buffer = game.get_state().audio_buffer if not game.is_episode_finished() else None
            block = (
                np.zeros((tics * AUDIO_PER_TIC, 2))
                if buffer is None
                else buffer[-tics * AUDIO_PER_TIC :] / 32768.0
            )
            pcm = to_int16(resampler.process(block))
            sound.append(pcm)
            heard += len(pcm)
        game.close()
    return {
        'frames': np.stack(frames),
        'bodies': np.array(bodies, np.float32),
        'actions': np.stack(actions),
        'marks': np.array(marks),
        'sound': np.concatenate(sound),
    }


def spectrograms(sound: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """The agent's hearing window at each step: log-mel of the last second before its mark."""
    stream, result, done = LogMelStream(), [], 0
    for mark in marks:
        stream.push(sound[done:mark])
        done = mark
        result.append(stream.spectrogram())
    return np.stack(result)


def train(data: dict[str, np.ndarray], epochs: float, seed: int) -> Learner:
    hearing = spectrograms(data['sound'], data['marks'])
    steps = [
        Step(i, data['frames'][i], data['actions'][i], 0.0, 0.0, 0.0, 0,
             {'hearing': hearing[i], 'body': data['bodies'][i]})
        for i in range(len(data['frames']))
    ]  # fmt: skip
    config = LearnerConfig(senses=','.join(SENSES), dynamics_buffer_size=len(steps))
    learner = Learner(config, seed)
    learner.pretrain({'': steps}, epochs, say=lambda text: None)
    return learner


@torch.no_grad()
def rewards(learner: Learner, data, hearing: np.ndarray) -> dict[str, np.ndarray]:
    """r_{t+1} for every step of a sequence: fused ('all') and each sense's share."""
    models = learner.models
    inputs = model_inputs(data['frames'], {'hearing': hearing, 'body': data['bodies']}, SENSES)
    z = models['encoder'].embed(inputs)
    actions = action_features(torch.as_tensor(data['actions']), 'continuous')
    previous = torch.cat([torch.zeros_like(actions[:1]), actions[:-1]])
    predicted = models['forward_dynamics'](previous[:-1], z[:-1], actions[:-1])
    shares = per_sense_rewards(predicted, z[1:], SENSES)
    result = {sense: np.concatenate([[0.0], v.numpy()]) for sense, v in shares.items()}
    result['all'] = np.mean([result[s] for s in SENSES], axis=0)
    return result


def bell(level: float) -> np.ndarray:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (np.sin(2 * np.pi * 2900 * t) + 0.7 * np.sin(2 * np.pi * 4400 * t)) * np.exp(-3 * t)
    stereo = np.repeat(tone[:, None], 2, axis=1)
    gain = 10 ** ((level - level_dbfs(to_int16(stereo * 0.5))) / 20) * 0.5
    return stereo * gain * 32768.0


def loudest_second(sound: np.ndarray) -> np.ndarray:
    window = SAMPLE_RATE
    energy = np.convolve(np.square(sound.astype(np.float64)).mean(1), np.ones(window), 'valid')
    start = int(np.argmax(energy[::160]) * 160)
    return sound[start : start + window].astype(np.float64)


def reward_scale(reward: np.ndarray, window: int = 10) -> dict[str, float]:
    """What a rise compares with: the fused reward's mean, its step-to-step spread, and the
    spread of its means over `window` steps (the span a rise is averaged over)."""
    reward = reward[1:]  # the first step has no prediction
    means = np.convolve(reward, np.ones(window) / window, 'valid')
    return {
        'mean': float(reward.mean()),
        'std': float(reward.std()),
        'window_std': float(means.std()),
    }


def onset_effects(learner, data, base, sounds: dict[str, np.ndarray], onsets: int) -> dict:
    steps = len(data['frames'])
    effects = {name: {'all': [], 'hearing': []} for name in sounds}
    for k in range(onsets):
        onset = 20 + k * (steps - 40) // max(onsets, 1)
        start = data['marks'][onset - 1]  # heard from the step after onset - 1
        for name, clip in sounds.items():
            mixed = data['sound'].astype(np.float64)
            end = min(len(mixed), start + len(clip))
            mixed[start:end] += clip[: end - start]
            sound = np.clip(mixed, -32768, 32767).astype(np.int16)
            heard = rewards(learner, data, spectrograms(sound, data['marks']))
            window = slice(onset, onset + 10)
            for part in ('all', 'hearing'):
                rise = heard[part][window] - base[part][window]
                effects[name][part].append(float(rise.mean()))
    return effects


def seed_bootstrap(values: list[float], draws: int = 10000) -> tuple[float, float]:
    """95 % interval of the mean, resampling seeds (a seed's onsets share its models)."""
    rng = np.random.default_rng(0)
    means = rng.choice(np.asarray(values), (draws, len(values))).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--train-steps', type=int, default=3000)
    parser.add_argument('--eval-steps', type=int, default=400)
    parser.add_argument('--onsets', type=int, default=20)
    parser.add_argument('--epochs', type=float, default=3.0)
    parser.add_argument('--scenario', default='defend_the_center')
    parser.add_argument('--name', default='hearing_novelty')
    args = parser.parse_args()
    torch.set_num_threads(1)

    per_seed, rows = {}, []
    started = time.monotonic()
    for seed in args.seeds:
        training = play(args.scenario, args.train_steps, seed)
        learner = train(training, args.epochs, seed)
        evaluation = play(args.scenario, args.eval_steps, seed + 1000)
        familiar = loudest_second(training['sound'])
        level = level_dbfs(to_int16(familiar / 32768.0))
        sounds = {'familiar': familiar, 'novel': bell(level)}
        base = rewards(learner, evaluation, spectrograms(evaluation['sound'], evaluation['marks']))
        scale = reward_scale(base['all'])
        effects = onset_effects(learner, evaluation, base, sounds, args.onsets)
        summary = {
            name: {part: float(np.mean(values)) for part, values in parts.items()}
            for name, parts in effects.items()
        }
        novel_higher = float(np.mean(np.array(effects['novel']['all']) >
                                     np.array(effects['familiar']['all'])))  # fmt: skip
        per_seed[seed] = {
            'effects': effects,
            'mean': summary,
            'novel_higher_share': novel_higher,
            'clip_level_dbfs': level,
            'training_sound_level_dbfs': level_dbfs(training['sound']),
            'reward_scale': scale,
        }
        rows.append(
            (
                f'seed {seed}: rise over the first second, familiar / novel (fused; hearing)',
                f'{summary["familiar"]["all"]:+.4f} / {summary["novel"]["all"]:+.4f}; '
                f'{summary["familiar"]["hearing"]:+.4f} / {summary["novel"]["hearing"]:+.4f}; '
                f'novel higher at {100 * novel_higher:.0f} % of onsets; reward without a sound '
                f'{scale["mean"]:.4f}, sd {scale["std"]:.4f} per step, {scale["window_std"]:.4f} '
                'over 1 s',
            )
        )
    means = {
        name: float(np.mean([per_seed[s]['mean'][name]['all'] for s in args.seeds]))
        for name in ('familiar', 'novel')
    }
    seeds_novel_higher = sum(
        per_seed[s]['mean']['novel']['all'] > per_seed[s]['mean']['familiar']['all']
        for s in args.seeds
    )
    differences = [per_seed[s]['mean']['novel']['all'] - per_seed[s]['mean']['familiar']['all']
                   for s in args.seeds]  # fmt: skip
    low, high = seed_bootstrap(differences)
    rows += [
        ('mean over seeds: familiar / novel (fused)', f'{means["familiar"]:+.4f} / {means["novel"]:+.4f}'),
        ('novel minus familiar (fused), seeds resampled: mean [95 % CI]',
         f'{np.mean(differences):+.5f} [{low:+.5f}, {high:+.5f}]'),
        ('seeds where the novel onset raises the reward more', f'{seeds_novel_higher} of {len(args.seeds)}'),
        ('settings', f'{args.scenario}, {args.train_steps} training steps, {args.epochs:g} epochs, '
                     f'{args.onsets} onsets on {args.eval_steps} new steps'),
        ('time (s)', f'{time.monotonic() - started:.0f}'),
    ]  # fmt: skip
    data = {
        'settings': vars(args),
        'seeds': per_seed,
        'mean_onset_rise': means,
        'seeds_novel_higher': seeds_novel_higher,
        'novel_minus_familiar': {'mean': float(np.mean(differences)), 'ci95': [low, high]},
    }
    benchlib.report(args.name, rows, data)


if __name__ == '__main__':
    main()
