"""Speed: the fast ops the engine trains with (`speed`, one module per backend), the bench,
its plain PyTorch peer and FLOP counting."""
