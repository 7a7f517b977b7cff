"""Helpers only the notebooks use, named for what they do: ``switches`` (smoke mode, runs folder,
CPU fallback), ``cost_estimates`` (time and memory before a heavy cell), ``install_check``
(versions, Java, GPU) and ``token_colours`` (what an update does with each token of a rollout).
The training library never imports them."""
