"""Small shared helpers: argument validation and resolution of pluggable parts."""
