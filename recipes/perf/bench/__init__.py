"""`spatialmix bench`: training-step and inference speed of the zoo beside a plain PyTorch peer.

    spatialmix bench                          # paper size, every installed backend, table on stdout
    spatialmix bench --json bench.json        # ... and every raw number as JSON
    spatialmix bench --size tiny --repeats 1  # a seconds-long correctness smoke (CI)
    spatialmix bench --precision float32,mixed_bfloat16 --peer-channels-last   # on a GPU
    python -m recipes.perf.bench ...          # the same without the CLI

What is timed (size `paper`): the zoo's ConvMixer-256/8 (k=5, p=2, 10 classes) and a separable
pre-activation ResNet-20 (`sep_resnet_cifar`, depth 3, width 16, d=9, k=3), batch 64 of
32×32×3, AdamW (lr 1e-3), sparse cross-entropy on logits, in every mode (full, chans, space):
- the training step: `model.train_on_batch(x, y)`, the compiled train function `fit` runs
  (forward, backward, AdamW update; `x`, `y` fixed arrays in memory);
- inference: `model.predict_on_batch(x)` (once per model: the mode does not change the
  forward pass);
- the peer: `recipes.perf.torch_peer`, the reference ConvMixer in plain PyTorch (NCHW, eager,
  `torch.optim.AdamW`), with the stem and depthwise convs frozen (`requires_grad=False`) in
  chans and the 1×1 convs in space, exactly as the zoo's modes freeze them.

How: each implementation runs in its own subprocess (one per Keras backend, `KERAS_BACKEND`
set before keras is imported; one for the peer; one for the input pipeline) that builds and
compiles everything first and runs `--warmup` steps (excluded). Then `--repeats` rounds; in
each round every (model, mode, kind) is timed on every implementation back to back, in an
order rotated from round to round, so the workers never run at the same time and a pair
(implementation, peer) is measured within seconds. One sample = the mean of `--steps`
consecutive steps. Reported: the median over rounds and the spread (min–max); ratios to the
peer are taken round by round (pair by pair), then their median. The Keras workers apply
the fast ops of `recipes.core.runtime` (what the training engine applies) unless `--variants plain` asks for the
plain Keras path (both in one run: `--variants fast,plain`).

FLOPs are counted analytically from the layer shapes: conv and dense multiply-adds × 2
(elementwise ops — BN, GELU, residual adds —, pooling and the optimizer are not counted).
Training = forward + input gradient of every layer that has a trainable layer before it
+ weight gradient of every trainable layer (each as many FLOPs as the layer's forward):
≈ 3× forward in full, less in chans/space. GFLOP/s is set against a matrix-multiply roof
measured in the same run: the best float32 2048×2048 matmul of NumPy and of every worker.

On a GPU: every worker runs on the GPU its framework sees (the Keras workers with the GPU
choices of `recipes.core.runtime`: XLA on TensorFlow, no CPU fast ops on JAX and TensorFlow),
the peer too (`.to("cuda")`, synchronised after each step). The workers share the GPU, so
TensorFlow grows its memory as needed and JAX does not preallocate. `--precision` adds Keras
workers under each mixed dtype policy (rows `torch:mixed_bfloat16`, ...) and, for each, the peer
in channels-last under `torch.autocast` of the same 16-bit type (float16 with a GradScaler;
row `peer_cl:mixed_bfloat16`), which that precision's rows are compared with;
`--peer-channels-last` adds the float32 channels-last peer (`peer_cl`). The table gives
images per second per row and sets the input pipeline's rate beside the fastest step.

The input pipeline (`recipes.core.data`, tf.data) is timed on `digits` (`load_dataset`, train,
shuffled, repeated) and on CIFAR-shaped data: 10 000 random 32×32×3 uint8 images through the
same shuffle/batch/convert/prefetch chain `load_dataset` builds for `cifar10`, with and
without augmentation. Its images/s are compared with the fastest training step measured.

Goals (issue 4), checked at the end: the default backend's (`recipes.core.choices.default_backend`)
ConvMixer step ≤ the peer's in full and in chans; chans/full ≤ 0.65 on every backend; JAX
within 1.5× of the peer; the input pipeline ≥ 10× the model's rate. Timing depends on what
else runs: the bench records the load average before and after and warns when the machine
was busy.
"""

from recipes.perf.bench.cli import configure_parser, main  # noqa: F401
from recipes.perf.bench.runner import run  # noqa: F401
