"""The engine every recipe runs on: choices (backends, scales, modes), data (a package),
training, the runtime (threads, fast ops per backend, data-parallel; a package), run
folders (runfolder), the engine (grid -> cells -> rows -> figure/report), claims, attacks (a
package, one module per backend), cell tasks and the recipe registry. Import the
submodules directly; nothing here imports Keras."""
