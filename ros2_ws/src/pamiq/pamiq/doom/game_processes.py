"""The training worlds' ViZDoom games, in this process or spread over worker processes.

[Why processes] ViZDoom holds the GIL while it steps (measured: threads gave no speed-up), so
on a machine with several cores the games step in parallel only in separate processes. The
batched engine's time per agent step was about a third the simulator's; split over two
processes that third halves.

[The protocol] Both kinds share one set of arrays (`GameArrays`, in shared memory for the
processes): the caller marks the worlds to act on (`selected`), writes their `seeds` or their
`commands` and `tics`, and calls `start()` or `advance()`; the games write back each world's
frame (preprocessed to 84x84 RGB, as the live agent sees it), position, and whether its episode
finished and reached the goal. Only numbers cross between processes, through that memory; a
pipe carries the one-word requests and the replies. Which process steps a game does not change
what it does: ViZDoom is deterministic given the seed and the inputs, so a run is the same with
any number of processes (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
import json
import mmap
from multiprocessing.connection import Connection
import os
import subprocess
import sys
import traceback

import numpy as np

from pamiq.doom.game import make_game
from pamiq.doom.stepping import RESOLUTION, pose, reached_goal
from pamiq.media.preprocessing import preprocess
from pamiq.vocabulary import FRAME_SHAPE

COMMAND_WIDTH = 5  # pamiq.doom.game.doom_command's [forward, strafe, turn, jump, use]
STOP_SECONDS = 10.0  # a worker that does not exit after its close request is terminated


@dataclass
class GameArrays:
    """Per-world inputs and outputs of the games, (N, ...) each."""

    frames: np.ndarray  # out: the frame now (not written when the episode finished)
    positions: np.ndarray  # out: x, y now (where it ended, when it finished)
    finished: np.ndarray  # out: the last advance ended the episode
    goals: np.ndarray  # out: ... and it reached the goal
    selected: np.ndarray  # in: the worlds a request acts on
    seeds: np.ndarray  # in (start): each selected world's episode seed
    commands: np.ndarray  # in (advance): each selected world's doom_command
    tics: np.ndarray  # in (advance): each selected world's tics

    LAYOUT = {
        'frames': (FRAME_SHAPE, np.uint8),
        'positions': ((2,), np.float64),
        'finished': ((), np.bool_),
        'goals': ((), np.bool_),
        'selected': ((), np.bool_),
        'seeds': ((), np.int64),
        'commands': ((COMMAND_WIDTH,), np.float64),
        'tics': ((), np.int64),
    }

    @classmethod
    def nbytes(cls, count: int) -> int:
        return sum(_aligned(_field_bytes(count, name)) for name in cls.LAYOUT)

    @classmethod
    def over(cls, buffer, count: int) -> GameArrays:
        """The arrays of `count` worlds laid over `buffer` (shared memory or a bytearray)."""
        arrays, offset = {}, 0
        for name, (shape, dtype) in cls.LAYOUT.items():
            arrays[name] = np.ndarray((count, *shape), dtype, buffer=buffer, offset=offset)
            offset += _aligned(_field_bytes(count, name))
        return cls(**arrays)

    def part(self, first: int, end: int) -> GameArrays:
        """Worlds first..end-1 (views: writes reach the whole)."""
        return GameArrays(**{f.name: getattr(self, f.name)[first:end] for f in fields(self)})


def _field_bytes(count: int, name: str) -> int:
    shape, dtype = GameArrays.LAYOUT[name]
    return count * int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _aligned(size: int) -> int:
    return (size + 7) // 8 * 8


class LocalGames:
    """`count` games in this process, reading and writing `arrays` (its own by default)."""

    def __init__(
        self,
        count: int,
        scenario: str,
        engine_dir: str,
        episode_tics: int | None,
        arrays: GameArrays | None = None,
    ) -> None:
        self.arrays = arrays or GameArrays.over(bytearray(GameArrays.nbytes(count)), count)
        self.games = []
        try:
            for _ in range(count):
                self.games.append(make_game(scenario, RESOLUTION, 0, engine_dir, episode_tics))
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        """A new episode in each selected world, from its seed."""
        a = self.arrays
        for world in np.flatnonzero(a.selected):
            game = self.games[world]
            game.set_seed(int(a.seeds[world]))
            game.new_episode()
            a.finished[world] = a.goals[world] = False
            self.look(world)

    def advance(self) -> None:
        """Each selected world holds its command for its tics."""
        self.begin_advance()

    def begin_advance(self) -> None:
        """`advance`, done at once here (`finish_advance` has nothing left to wait for)."""
        a = self.arrays
        for world in np.flatnonzero(a.selected):
            game = self.games[world]
            game.set_action(a.commands[world].tolist())
            game.advance_action(int(a.tics[world]))
            a.finished[world] = game.is_episode_finished()
            if a.finished[world]:
                # The pose where it ended counts (ViZDoom still reports it); no frame remains.
                a.positions[world] = pose(game)[:2]
                a.goals[world] = reached_goal(game)
            else:
                self.look(world)

    def finish_advance(self) -> None:
        pass

    def look(self, world: int) -> None:
        """One get_state() for the frame and the position (the pose is the first of the
        game's variables)."""
        now = self.games[world].get_state()
        self.arrays.frames[world] = preprocess(now.screen_buffer)
        self.arrays.positions[world] = now.game_variables[:2]

    def close(self) -> None:
        for game in self.games:
            game.close()
        self.games = []


def shared_memory(path: str, size: int = 0) -> mmap.mmap:
    """The arrays' memory: a file mapped by the engine and its workers (`size` creates it)."""
    with open(path, 'w+b' if size else 'r+b') as stream:
        if size:
            stream.truncate(size)
        return mmap.mmap(stream.fileno(), 0)


def serve(requests: Connection, replies: Connection, memory: str, count: int, first: int,
          end: int, options: dict) -> None:  # fmt: skip
    """A worker: the games first..end-1 of the shared arrays, until asked to close."""
    shared = shared_memory(memory)
    games = arrays = None
    try:
        arrays = GameArrays.over(shared, count).part(first, end)
        games = LocalGames(end - first, arrays=arrays, **options)
        replies.send_bytes(b'ok')
        while (request := requests.recv_bytes()) != b'close':
            try:
                {b'start': games.start, b'advance': games.advance}[request]()
                replies.send_bytes(b'ok')
            except Exception:
                replies.send_bytes(traceback.format_exc().encode())
    except (EOFError, KeyboardInterrupt):
        pass  # the engine went away or was interrupted: nothing to hand back
    except Exception:
        replies.send_bytes(traceback.format_exc().encode())
    finally:
        if games is not None:
            games.close()
        games = arrays = None  # the views must go before the memory can close
        shared.close()


@dataclass
class Worker:
    first: int
    end: int
    process: subprocess.Popen
    requests: Connection
    replies: Connection


class GameProcesses:
    """`count` games spread over `processes` worker processes, in contiguous blocks.

    Each worker is a fresh interpreter (`python -m pamiq.doom.game_processes`), not a fork:
    the engine has torch's thread pools by now, and a user's script need not guard its main.
    """

    def __init__(
        self,
        count: int,
        processes: int,
        scenario: str,
        engine_dir: str,
        episode_tics: int | None,
    ) -> None:
        if not 1 <= processes <= count:
            raise ValueError(f'{count} worlds need 1..{count} world processes, got {processes}')
        # A file in the engine's own directory, which goes with it.
        self.memory_path = os.path.join(engine_dir, 'world-arrays')
        self.memory: mmap.mmap | None = shared_memory(self.memory_path, GameArrays.nbytes(count))
        self.arrays = GameArrays.over(self.memory, count)
        self.workers: list[Worker] = []
        self.advancing: list[Worker] = []  # the workers an unfinished advance waits for
        bounds = np.linspace(0, count, processes + 1).round().astype(int)
        try:
            for first, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
                # Each its own engine directory: engines starting at once in one directory
                # write the same config file and can crash.
                own_dir = os.path.join(engine_dir, f'worlds-{first}')
                os.makedirs(own_dir, exist_ok=True)
                options = json.dumps(
                    dict(scenario=scenario, engine_dir=own_dir, episode_tics=episode_tics)
                )
                self.workers.append(self.launch(count, first, end, options))
            self.wait(self.workers, 'start its games')
        except BaseException:
            self.close()
            raise

    def launch(self, count: int, first: int, end: int, options: str) -> Worker:
        requests_read, requests_write = os.pipe()
        replies_read, replies_write = os.pipe()
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
        path = os.environ.get('PYTHONPATH')
        environment = {
            **os.environ,
            'PYTHONPATH': package_root + (os.pathsep + path if path else ''),
        }
        command = [
            sys.executable, '-m', 'pamiq.doom.game_processes', str(requests_read),
            str(replies_write), self.memory_path, str(count), str(first), str(end), options,
        ]  # fmt: skip
        try:
            process = subprocess.Popen(
                command, pass_fds=(requests_read, replies_write), env=environment
            )
        finally:
            os.close(requests_read)
            os.close(replies_write)
        return Worker(
            first, end, process, Connection(requests_write, readable=False),
            Connection(replies_read, writable=False),
        )  # fmt: skip

    def start(self) -> None:
        self.request(b'start')

    def advance(self) -> None:
        self.begin_advance()
        self.finish_advance()

    def begin_advance(self) -> None:
        """Start `advance` and return at once: the workers step while the caller computes what
        does not read the arrays; `finish_advance` waits for them."""
        self.advancing = self.send(b'advance')

    def finish_advance(self) -> None:
        busy, self.advancing = self.advancing, []
        self.wait(busy, 'advance')

    def request(self, word: bytes) -> None:
        """Send `word` to every worker holding a selected world, then wait for each."""
        self.wait(self.send(word), word.decode())

    def send(self, word: bytes) -> list[Worker]:
        """Send `word` to every worker holding a selected world; returns those workers."""
        busy = [w for w in self.workers if self.arrays.selected[w.first : w.end].any()]
        for worker in busy:
            try:
                worker.requests.send_bytes(word)
            except OSError:
                pass  # it has gone: wait() says how
        return busy

    def wait(self, workers: list[Worker], doing: str) -> None:
        failures = []
        for worker in workers:
            try:
                reply = worker.replies.recv_bytes()
            except (EOFError, OSError):
                code = worker.process.wait()
                reply = f'its process exited with code {code}'.encode()
            if reply != b'ok':
                failures.append(
                    f'worlds {worker.first}..{worker.end - 1} could not {doing}: {reply.decode()}'
                )
        if failures:
            raise RuntimeError('\n'.join(failures))

    def close(self) -> None:
        for worker in self.workers:
            try:
                worker.requests.send_bytes(b'close')
            except OSError:
                pass  # it has gone already
        for worker in self.workers:
            try:
                worker.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            worker.requests.close()
            worker.replies.close()
        self.workers = []
        if self.memory is not None:
            self.arrays = None
            try:
                self.memory.close()
            except BufferError:
                pass  # a caller still holds a view; the memory goes with the process
            self.memory = None


def make_games(
    count: int, processes: int, scenario: str, engine_dir: str, episode_tics: int | None
) -> LocalGames | GameProcesses:
    """The games in this process (`processes` 0) or over that many worker processes."""
    if processes == 0:
        return LocalGames(count, scenario, engine_dir, episode_tics)
    return GameProcesses(count, processes, scenario, engine_dir, episode_tics)


if __name__ == '__main__':
    # A GameProcesses worker: requests fd, replies fd, memory name, count, first, end, options.
    serve(
        Connection(int(sys.argv[1]), writable=False),
        Connection(int(sys.argv[2]), readable=False),
        sys.argv[3],
        int(sys.argv[4]),
        int(sys.argv[5]),
        int(sys.argv[6]),
        json.loads(sys.argv[7]),
    )
