"""EMPO²'s memory: tips the policy writes itself, retrieved by relevance, and the novelty reward."""

from empo2_lite.memory.novelty import Novelty
from empo2_lite.memory.store import TipEntry, TipMemory
from empo2_lite.memory.tips import sanitize_tip, write_tips

__all__ = ["Novelty", "TipEntry", "TipMemory", "sanitize_tip", "write_tips"]
