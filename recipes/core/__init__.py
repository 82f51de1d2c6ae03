"""The engine every recipe runs on: choices (backends, scales, modes), data, training, run
folders (runfolder), the engine (grid -> cells -> rows -> figure/report), claims, cell tasks and
the recipe registry. Import the submodules directly; nothing here imports Keras."""
