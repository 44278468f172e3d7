"""Tests of the case store."""
