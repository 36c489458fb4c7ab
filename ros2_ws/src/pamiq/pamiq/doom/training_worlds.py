"""Several Doom worlds stepped together, each exactly as the live world steps (stepping.py).

A step of world i: its action becomes VRChat inputs, the game advances that world's 3 or 4
tics (the world node's rounding, counted per world), and when ViZDoom ends the episode (goal or
timeout) a new one starts at once on the next episode seed (`episode_seed`: one block per
training seed, far from `pamiq eval`'s spawns). Each world keeps its episode's cells (the
evaluation's metric, from the pose after every step) and the actions since its episode began:
ViZDoom is deterministic given the seed and the actions, so replaying them rebuilds a world
exactly, which is how a resumed run continues where it stopped. No torch, no ROS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pamiq.doom.game import TICRATE, doom_command
from pamiq.doom.game_processes import make_games
from pamiq.doom.geometry import Cell, cell_of
from pamiq.doom.stepping import TURN_RATE, action_inputs, step_tics
from pamiq.vocabulary import CONTINUOUS_ACTION_DIM, DISCRETE_ACTION_CHOICES

SCENARIO = 'my_way_home'
TRAINING_SEEDS_FROM = 1_000_000  # above every evaluation seed (pamiq eval: 1000, 1001, ...)
EPISODES_PER_SEED = 100_000  # a training seed's block of episode seeds
MAX_TRAINING_SEED = 9_999  # keeps every episode seed below 2**31


def episode_seed(seed: int, episode: int) -> int:
    """The ViZDoom seed of training episode `episode` (0, 1, ...) of training seed `seed`.

    Raises:
        ValueError: The seed or the episode is outside its block (the blocks would overlap).
    """
    if not 0 <= seed <= MAX_TRAINING_SEED:
        raise ValueError(f'training seeds are 0..{MAX_TRAINING_SEED}, got {seed}')
    if not 0 <= episode < EPISODES_PER_SEED:
        raise ValueError(f'a training seed has {EPISODES_PER_SEED} episode seeds, asked {episode}')
    return TRAINING_SEEDS_FROM + seed * EPISODES_PER_SEED + episode


@dataclass
class WorldState:
    """What rebuilds one world: its episode's seed and actions, and its step count."""

    episode: int  # the training episode it plays (its index in the seed's block)
    steps: int = 0  # steps taken since the run began (the tic rounding counts them)
    actions: list[np.ndarray] = field(default_factory=list)  # since the episode began
    cells: set[Cell] = field(default_factory=set)


@dataclass(frozen=True)
class EpisodeRecord:
    episode: int
    seed: int
    world: int
    steps: int
    cells: int
    goal: bool
    ended_at: int  # the run's total steps when it ended


class DoomWorlds:
    """`count` my_way_home worlds for training seed `seed`, their games in this process
    (`processes` 0) or over that many worker processes (pamiq.doom.game_processes)."""

    def __init__(
        self,
        count: int,
        seed: int,
        action_space: str,
        engine_dir: str,
        episode_tics: int | None = None,
        scenario: str = SCENARIO,
        processes: int = 0,
    ) -> None:
        if count < 1:
            raise ValueError(f'need at least one world, got {count}')
        episode_seed(seed, 0)  # refuses a bad training seed before any engine starts
        self.seed, self.action_space = seed, action_space
        self.games = make_games(count, processes, scenario, engine_dir, episode_tics)
        self.arrays = self.games.arrays
        self.count = count
        self.next_episode = 0
        self.states: list[WorldState] = [WorldState(0) for _ in range(count)]
        self.begin(range(count), [0] * count)

    def __len__(self) -> int:
        return self.count

    def begin(self, worlds, steps: list[int]) -> None:
        """A new episode in each of `worlds` (in order: they take the next episodes)."""
        a = self.arrays
        a.selected[:] = False
        for world, taken in zip(worlds, steps):
            state = WorldState(self.next_episode, taken)
            self.next_episode += 1
            self.states[world] = state
            a.selected[world] = True
            a.seeds[world] = episode_seed(self.seed, state.episode)
        self.games.start()
        for world in worlds:
            self.states[world].cells.add(cell_of(*a.positions[world]))

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """(observations (N, 84, 84, 3) uint8, positions (N, 2) float64) now."""
        return self.arrays.frames.copy(), self.arrays.positions.copy()

    def command(self, world: int, action: np.ndarray) -> None:
        """World `world` takes `action` as its next step (run by the next advance)."""
        state, a = self.states[world], self.arrays
        state.steps += 1
        state.actions.append(np.array(action))
        a.commands[world] = doom_command(
            action_inputs(action, self.action_space), TURN_RATE / TICRATE
        )
        a.tics[world] = step_tics(state.steps)
        a.selected[world] = True

    def step(
        self, actions: np.ndarray, total_steps: int
    ) -> tuple[np.ndarray, list[EpisodeRecord]]:
        """Act in every world; returns which started a new episode (N,) bool, and the
        episodes that ended. `total_steps` is the run's step count after this step."""
        self.begin_step(actions)
        return self.finish_step(total_steps)

    def begin_step(self, actions: np.ndarray) -> None:
        """The first half of `step`: the games start stepping (in their worker processes, if
        any) and this returns; read nothing of the worlds before `finish_step`."""
        self.arrays.selected[:] = False
        for world, action in enumerate(actions):
            self.command(world, action)
        self.games.begin_advance()

    def finish_step(self, total_steps: int) -> tuple[np.ndarray, list[EpisodeRecord]]:
        """The second half of `step`: waits for the games, then records and restarts."""
        a = self.arrays
        self.games.finish_advance()
        starts = a.finished.copy()
        ended = []
        for world in range(self.count):
            state = self.states[world]
            state.cells.add(cell_of(*a.positions[world]))
            if starts[world]:
                ended.append(
                    EpisodeRecord(
                        state.episode,
                        episode_seed(self.seed, state.episode),
                        world,
                        len(state.actions),
                        len(state.cells),
                        bool(a.goals[world]),
                        total_steps,
                    )
                )
        if starts.any():
            worlds = np.flatnonzero(starts).tolist()
            self.begin(worlds, [self.states[w].steps for w in worlds])
        return starts, ended

    def snapshot(self) -> dict:
        """What `restore` needs (JSON-able except the actions, which are arrays)."""
        return {
            'next_episode': self.next_episode,
            'worlds': [
                {'episode': s.episode, 'steps': s.steps, 'actions': self.actions_array(s)}
                for s in self.states
            ],
        }

    def actions_array(self, state: WorldState) -> np.ndarray:
        """(steps, width) actions of the world's episode, (0, width) when it just began."""
        continuous = self.action_space == 'continuous'
        width = CONTINUOUS_ACTION_DIM if continuous else len(DISCRETE_ACTION_CHOICES)
        dtype = np.float32 if continuous else np.int64
        return np.array(state.actions, dtype).reshape(len(state.actions), width)

    def restore(self, snapshot: dict, on_frame=None) -> None:
        """Rebuild every world by replaying its episode; `on_frame(world, observation)` sees
        each frame of the replay from the episode's first on (to rebuild frame stacks)."""
        if len(snapshot['worlds']) != self.count:
            raise ValueError(
                f'the run had {len(snapshot["worlds"])} worlds; this one has {self.count}'
            )
        a = self.arrays
        for world, saved in enumerate(snapshot['worlds']):
            actions = list(saved['actions'])
            self.next_episode = int(saved['episode'])
            self.begin([world], [int(saved['steps']) - len(actions)])
            if on_frame is not None:
                on_frame(world, a.frames[world].copy())
            for action in actions:
                a.selected[:] = False
                self.command(world, action)
                self.games.advance()
                if a.finished[world]:
                    raise ValueError(f'world {world} ended its episode while replaying it')
                self.states[world].cells.add(cell_of(*a.positions[world]))
                if on_frame is not None:
                    on_frame(world, a.frames[world].copy())
        self.next_episode = int(snapshot['next_episode'])

    def close(self) -> None:
        self.arrays = None
        self.games.close()
