"""The contouring step: VOI list, threshold with live preview, drawing tools, undo."""
