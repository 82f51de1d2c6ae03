"""The bench (`spatialmix bench`), its plain PyTorch peer and FLOP counting. It times the
runtime the engine trains with (recipes.core.runtime, with and without its fast ops); the
engine never imports this package."""
