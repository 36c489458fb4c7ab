"""The policy's sense of its own curiosity: the intrinsic reward it earned a step ago as an input.

[Why] A policy that sees only its last frames cannot tell a place it has been from a new one, so
under any within-episode count (the episodic oracle's included) it settles on one fixed pattern
that keeps paying, a circle or a sweep along the walls, and which pattern differs by seed
(docs/evaluation.md). NGU (Badia et al. 2020) gives its policy the previous intrinsic reward: a low
one says "been here", which a memoryless policy can act on.

[What it sees] Deciding a_t, the reward of arriving at o_{t-1}: the newest one both acting paths
have before they decide (the agent and `pamiq train` compute the reward of arriving at o_t while
a_t is on its way). 0 at an episode's first two steps and after a reset. Raw, not normalised: a
fixed input scale for a reward whose scale is fixed (place_count's and the oracle's lie in
[0, 1]); clipped so that no reward's outlier reaches the network.
"""

from __future__ import annotations

import torch

CONTEXT = 1  # numbers beside the frames: the one reward
CLIP = 10.0


def reward_context(rewards: torch.Tensor) -> torch.Tensor:
    """(B,) rewards -> (B, CONTEXT) policy input: finite, within +-CLIP."""
    finite = torch.nan_to_num(rewards.to(torch.float32), nan=0.0, posinf=CLIP, neginf=-CLIP)
    return finite.clamp(-CLIP, CLIP).unsqueeze(-1)
