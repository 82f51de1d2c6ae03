"""Paper B, "Spatial Information is Overrated for Image Classification" (ICLR 2020
submission): one module per experiment; the recipe id is the module name with `_` -> `-`."""
