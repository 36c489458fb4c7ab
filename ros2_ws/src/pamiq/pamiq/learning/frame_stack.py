"""The last k views of each stream, stacked into one network input (the compact preset's 4)."""

from __future__ import annotations

import torch


class FrameStacks:
    """(streams, frames*C, H, W) uint8, the newest view last. A stream that starts afresh (a new
    episode, a gap in its steps) fills its stack with its first view, as the original Atari
    wrappers do at a reset."""

    def __init__(self, streams: int, frames: int, view_shape: tuple[int, int, int]) -> None:
        self.frames, self.channels = frames, view_shape[0]
        self.stacks = torch.zeros(
            (streams, frames * view_shape[0], *view_shape[1:]), dtype=torch.uint8
        )

    def reset(self, views: torch.Tensor, streams: torch.Tensor | None = None) -> None:
        """Fill the stacks of `streams` (all by default) with their view (S, C, H, W)."""
        target = slice(None) if streams is None else streams
        self.stacks[target] = views.repeat(1, self.frames, 1, 1)

    def push(self, views: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """Add each stream's newest view (N, C, H, W); streams where `starts` begin afresh.
        Returns the new stacks (a copy)."""
        rolled = torch.cat([self.stacks[:, self.channels :], views], 1)
        fresh = views.repeat(1, self.frames, 1, 1)
        self.stacks = torch.where(starts.view(-1, 1, 1, 1), fresh, rolled)
        return self.stacks.clone()

    def push_one(self, stream: int, view: torch.Tensor) -> None:
        """Add one stream's newest view (C, H, W) (rebuilding a stack frame by frame)."""
        self.stacks[stream] = torch.cat([self.stacks[stream, self.channels :], view])
