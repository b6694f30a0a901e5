"""Version numbers of the core distribution and of the plugin API it offers."""

__version__ = "0.1.0"

#: Version of the contract between core and plugins (hook specs, component interfaces).
#: Plugins declare the range they support with ``MLCORE_API = ">=1.0,<2"`` in their
#: entry-point module; a minor bump adds to the API, a major bump breaks it.
PLUGIN_API_VERSION = "1.0"
