"""Paper A, "Rethinking the Role of Spatial Mixing" (Cazenavette, Julin, Lucey): one module
per experiment; the recipe id is the module name with `_` -> `-`."""
