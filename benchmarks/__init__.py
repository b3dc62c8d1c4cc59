"""Benchmarks: each `benchmarks/NAME.py` runs alone as `python -m benchmarks.NAME` and prints one JSON
object on its last line. `python -m benchmarks` (make bench) runs them all and writes JSON + markdown."""
