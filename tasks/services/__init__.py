"""What the stages share: storage, caching, tracking, the model store and registry, the run
folder, provenance, audit and the run report's wiring."""
