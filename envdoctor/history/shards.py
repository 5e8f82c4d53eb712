"""How a package's module facts are split into files (one per subpackage), so a lookup reads only its own."""


def shard_key(module: str) -> str:
    """transformers.models.llama.* share one file, transformers.utils.* another; a top-level module its own."""
    parts = module.split(".")
    return ".".join(parts[:3] if len(parts) >= 3 and parts[1] == "models" else parts[:2])
