"""empo2-lite: EMPO² (memory-augmented on- and off-policy RL for LLM agents) on ScienceWorld.

The package is organised by job: ``tasks`` (the paper's 18 tasks), ``env`` (ScienceWorld episodes
and a pool of JVMs), and, as the kit grows, policy, rollouts, memory, algorithm and trainer.
"""

__version__ = "0.1.0"
