"""Configuration: settings read once at start-up from flags, the environment and the file."""
