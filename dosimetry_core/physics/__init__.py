"""Physics data and helpers: nuclides, decay (later: materials, cross sections)."""
