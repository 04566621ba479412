"""Preprocessing layers: what a checkpoint expects done to its inputs."""
