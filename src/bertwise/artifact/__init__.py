"""Model folders on disk: the manifest, the content hash, and checks of output paths."""
