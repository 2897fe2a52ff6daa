"""Benchmark cases run by `nbtrade bench` (installed as nbtrade.benchsuite)."""
