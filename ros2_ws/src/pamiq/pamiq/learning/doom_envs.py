"""Several Doom worlds stepped together, each exactly as the live world steps (episodes.py).

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

from pamiq.doom import TICRATE, doom_command, make_game
from pamiq.doom_map import Cell, cell_of
from pamiq.learning.episodes import (
    RESOLUTION,
    TURN_RATE,
    action_inputs,
    pose,
    reached_goal,
    step_tics,
)
from pamiq.learning.preprocessing import preprocess
from pamiq.vocabulary import CONTINUOUS_ACTION_DIM, DISCRETE_ACTION_CHOICES, FRAME_SHAPE

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
    """`count` my_way_home worlds for training seed `seed`."""

    def __init__(
        self,
        count: int,
        seed: int,
        action_space: str,
        engine_dir: str,
        episode_tics: int | None = None,
        scenario: str = SCENARIO,
    ) -> None:
        if count < 1:
            raise ValueError(f'need at least one world, got {count}')
        episode_seed(seed, 0)  # refuses a bad training seed before any engine starts
        self.seed, self.action_space = seed, action_space
        self.games = []
        try:
            for _ in range(count):
                self.games.append(make_game(scenario, RESOLUTION, 0, engine_dir, episode_tics))
        except BaseException:
            self.close()
            raise
        self.next_episode = 0
        self.frames = np.zeros((count, *FRAME_SHAPE), np.uint8)
        self.positions = np.zeros((count, 2), np.float64)
        self.states = [self.begin(i) for i in range(count)]

    def __len__(self) -> int:
        return len(self.games)

    def begin(self, world: int, steps: int = 0) -> WorldState:
        state = WorldState(self.next_episode, steps)
        self.next_episode += 1
        game = self.games[world]
        game.set_seed(episode_seed(self.seed, state.episode))
        game.new_episode()
        self.look(world, state)
        return state

    def look(self, world: int, state: WorldState) -> None:
        """Keep world `world`'s frame and position now (one get_state() for both: the pose is
        the first of the game's variables) and count its cell."""
        now = self.games[world].get_state()
        self.frames[world] = preprocess(now.screen_buffer)
        self.positions[world] = now.game_variables[:2]
        state.cells.add(cell_of(*self.positions[world]))

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """(observations (N, 84, 84, 3) uint8, positions (N, 2) float64) now."""
        return self.frames.copy(), self.positions.copy()

    def step(
        self, actions: np.ndarray, total_steps: int
    ) -> tuple[np.ndarray, list[EpisodeRecord]]:
        """Act in every world; returns which started a new episode (N,) bool, and the
        episodes that ended. `total_steps` is the run's step count after this step."""
        starts = np.zeros(len(self.games), bool)
        ended = []
        for world, (game, action) in enumerate(zip(self.games, actions)):
            state = self.states[world]
            state.steps += 1
            state.actions.append(np.array(action))
            game.set_action(
                doom_command(action_inputs(action, self.action_space), TURN_RATE / TICRATE)
            )
            game.advance_action(step_tics(state.steps))
            if game.is_episode_finished():
                # The pose where it ended counts (ViZDoom still reports it); no frame remains.
                state.cells.add(cell_of(*pose(game)[:2]))
                ended.append(
                    EpisodeRecord(
                        state.episode,
                        episode_seed(self.seed, state.episode),
                        world,
                        len(state.actions),
                        len(state.cells),
                        reached_goal(game),
                        total_steps,
                    )
                )
                self.states[world] = self.begin(world, state.steps)
                starts[world] = True
            else:
                self.look(world, state)
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
        if len(snapshot['worlds']) != len(self.games):
            raise ValueError(
                f'the run had {len(snapshot["worlds"])} worlds; this one has {len(self.games)}'
            )
        for world, saved in enumerate(snapshot['worlds']):
            game = self.games[world]
            actions = list(saved['actions'])
            state = WorldState(int(saved['episode']), int(saved['steps']) - len(actions))
            game.set_seed(episode_seed(self.seed, state.episode))
            game.new_episode()
            self.look(world, state)
            if on_frame is not None:
                on_frame(world, self.frames[world])
            for action in actions:
                state.steps += 1
                state.actions.append(np.array(action))
                command = doom_command(
                    action_inputs(action, self.action_space), TURN_RATE / TICRATE
                )
                game.set_action(command)
                game.advance_action(step_tics(state.steps))
                if game.is_episode_finished():
                    raise ValueError(f'world {world} ended its episode while replaying it')
                self.look(world, state)
                if on_frame is not None:
                    on_frame(world, self.frames[world])
            self.states[world] = state
        self.next_episode = int(snapshot['next_episode'])

    def close(self) -> None:
        for game in self.games:
            game.close()
