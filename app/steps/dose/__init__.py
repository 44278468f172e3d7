"""Dose step: choose the engine, run it, the DVH of any VOIs and the dose table with limits."""
