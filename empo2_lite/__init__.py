"""empo2-lite: EMPO² (memory-augmented on- and off-policy RL for LLM agents) on ScienceWorld.

The package is organised by job: ``config`` (every setting and the presets, torch-free),
``tasks`` (the paper's 18 tasks), ``env`` (ScienceWorld episodes and a pool of JVMs), ``policy``
(model loading and sampling), ``rollout`` and ``trajectory`` (lock-step episodes as exact tokens),
``memory`` (tips and the novelty reward), ``algo`` (advantages, losses, modes, the update),
``trainer``, ``evaluation``, ``runs`` (the run folder), ``experiments``, ``results`` and ``plots``.
"""

__version__ = "0.1.0"
