"""Output heads that sit on top of encoders (masked language modelling)."""
