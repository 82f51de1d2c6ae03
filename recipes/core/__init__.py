"""The engine every recipe runs on: choices (backends, scales, modes), data, training, run
folders (runlog), the engine (grid -> cells -> rows -> figure/report), claims, cell tasks and
the recipe registry. Import the submodules directly; nothing here imports Keras."""
