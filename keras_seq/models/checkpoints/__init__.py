"""Checkpoint loading: handle resolution, the safetensors reader, the converters' base and
keras-hub-layout presets. The family converters live beside their families."""
