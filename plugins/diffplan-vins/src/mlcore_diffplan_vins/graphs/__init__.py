"""The graph half of diffplan-vins: maze and geometric graphs, message-passing planners, rollouts.

Everything here that touches torch-geometric imports it inside the module that needs it, and
nothing in :mod:`.specs` or :mod:`.config` imports torch, so listing the plugin stays light.
"""
