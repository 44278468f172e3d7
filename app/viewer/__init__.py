"""The viewer: 2D planes with layers, VOI list, VTK 3D view (bound to the case session)."""
