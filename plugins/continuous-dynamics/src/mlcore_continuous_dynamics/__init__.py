"""mlcore plugin: learned dynamics of a 12-D quadrotor flying between waypoints in weather."""

__version__ = "0.1.0"
