"""Compiling a decoding function once per backend: `tf.function` on TensorFlow, `jax.jit` on
JAX, `torch.compile` of the model's step on PyTorch (opt-in).

Keras compiles `fit` and `predict` per backend but offers nothing for a loop that calls a
model's layers outside them. `compile_decoding` adds it for `generate` and
`speculative_generate`:

- TensorFlow: a `tf.function` (XLA when `jit_compile`), traced once per input shape.
- JAX: a `jax.jit` of a stateless function: the model's weights and the samplers' seed states
  go in as arguments through `keras.StatelessScope` (as keras-hub's `CausalLM` does), so they
  are neither baked into the compiled program as constants (a weight update would go unseen)
  nor leaked as tracers; the seed states it returns are assigned back, so the next call draws
  new numbers. Compiled once per input shape, then reused.
- PyTorch: eager by default (keras-hub's `CausalLM` too runs its loop eagerly there). With
  `jit_compile=True`, `compile_step` wraps the model's per-token step (`call_with_cache`,
  `call_with_cache_tokens`) in one `torch.compile` per model and method, reused by every
  call and decoding configuration; the loop, the prompt and the samplers stay eager Python
  (the Keras `while_loop` is a Python loop on PyTorch, and keras' seeded random ops are kept
  out of `torch.compile`), and the whole decoding runs under `torch.no_grad()`. The weights
  are read by the compiled step at each call (a weight update is seen), and the samplers
  draw exactly as eagerly, so the tokens are eager's for a fixed seed.

Measured on a tiny GPT (2 layers), 32 greedy tokens for 2 prompts after the first call, CPU:
about 3 ms on JAX and 4 ms on TensorFlow compiled; 0.5 to 0.8 s on JAX op by op.

PyTorch 2.13 on CPU (2 cores shared with other work, load 2.1 to 3.1; one torch thread;
a 16-token prompt, vocabulary 5000; medians of 3 calls after the first, one process):

| GPT | batch x tokens | eager | step compiled | first compiled call |
|---|---|---|---|---|
| 2 layers, width 64 | 1 x 32 | 272 ms | 60 ms | 13 s |
| | 8 x 128 | 1239 ms | 275 ms | 13 s |
| 4 layers, width 256 | 1 x 32 | 635 ms | 118 ms | 23 s |
| | 8 x 128 | 4094 ms | 717 ms | 21 s |

So 4.5x to 5.7x faster per call, but each new shape (batch size, cache length) compiles for
13 to 25 s: it pays off after some 6 to 60 calls of one shape, and `jit_compile=None` stays
eager on PyTorch. The step is one graph: `PositionEmbedding` gathers its rows on PyTorch,
as a slice at a tensor offset broke it into about 10 graphs (1.2x to 2x slower, 15 to 40 s
to compile). Measured and not taken (with those graph breaks): `dynamic=False` (slower on
the small GPT, 82 against 78 ms at 1 x 32; faster on the larger one at 8 x 128, 1122 against
1485 ms; and a compilation for every new shape, where PyTorch's default compiles the sizes
as symbols from the second shape on); `mode="reduce-overhead"` (CUDA graphs: nothing on
CPU, 90 against 78 ms); compiling with gradients on (120 against 78 ms, 31 to 44 s to
compile); `torch.compile` of the whole decoding function (its first call, 32 tokens, had
not finished after about 4 minutes). With torch's default two threads on the busy two
cores, eager decoding was 9x slower (2.1 s at 1 x 32) and the compiled step no faster
(2.0 s): thread contention, not Python, then dominates.
"""

import keras
from keras import ops


def compiles(models, jit_compile):
    """Whether decoding is compiled, after checking `jit_compile` against the backend.

    On TensorFlow decoding is a graph unless a model has `run_eagerly=True` (`jit_compile`
    then chooses XLA); on JAX it is compiled unless `jit_compile=False` or a model runs
    eagerly; on PyTorch only with `jit_compile=True` (`torch.compile` of the step; `None`
    stays eager, see the module docstring). `jit_compile=True` with a model that runs
    eagerly, or on another backend, is an error.
    """
    backend = keras.backend.backend()
    eager = any(bool(getattr(model, "run_eagerly", False)) for model in models)
    compilable = backend in ("tensorflow", "jax", "torch") and not eager
    if jit_compile and not compilable:
        raise ValueError(
            "`jit_compile=True` needs a compiled decoding loop, but the model runs eagerly "
            f"(`run_eagerly=True`, or the {backend!r} backend, where decoding is not "
            "compiled). Pass jit_compile=None or False. "
            f"Received: jit_compile={jit_compile}"
        )
    if backend == "jax":
        return compilable and jit_compile is not False  # JAX compiles with XLA or not at all
    if backend == "torch":
        return compilable and jit_compile is True  # minutes of compiling: opt-in
    return compilable  # TensorFlow: a graph, with XLA when `jit_compile`


def compile_decoding(function, models, samplers, jit_compile):
    """`function` compiled for the backend (see the module docstring).

    Args:
        function: callable of tensors (nested structures) returning tensors; it calls the
            layers of `models` and draws random numbers from `samplers`' seed generators.
        models: the Keras models whose weights `function` reads.
        samplers: keras-hub samplers (or `None`s) whose seed states `function` advances.
        jit_compile: bool. On TensorFlow, compile with XLA (else a plain graph); JAX always
            compiles with XLA. On PyTorch `function` runs under `torch.no_grad()`; what is
            compiled there is the model's step (`compile_step`).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # No AutoGraph: the loop is keras.ops (while_loop), and an error raised while
        # tracing (a bad prompt shape) then reaches the caller as raised, not wrapped in
        # AutoGraph's "in user code" trace.
        return tf.function(function, jit_compile=jit_compile, autograph=False)
    if backend == "jax":
        return _jax_jit(function, models, samplers)
    if backend == "torch":
        import torch

        def without_gradients(*args):
            # No autograd graph: a compiled step with gradients on was measured 1.5x slower
            # to run and to compile (module docstring).
            with torch.no_grad():
                return function(*args)

        return without_gradients
    return function


def compile_step(model, method, compiled):
    """`model`'s step method named `method` (`"call_with_cache"` or `"call_with_cache_tokens"`),
    compiled on PyTorch when `compiled`, else the bound method as it is (TensorFlow and JAX
    compile the whole decoding function instead).

    One `torch.compile` per model and method, kept on the model and shared by every decoding
    configuration: a new input shape (batch size, cache length) recompiles it once (after
    the second shape with dynamic sizes, PyTorch's default), a shape seen before reuses it.
    """
    step = getattr(model, method)
    if not compiled or keras.backend.backend() != "torch":
        return step
    steps = model.__dict__.get("_keras_seq_compiled_steps")
    if steps is None:
        steps = {}
        # Past Keras' attribute tracking, as `generate` keeps its functions.
        object.__setattr__(model, "_keras_seq_compiled_steps", steps)
    if method not in steps:
        import torch

        steps[method] = torch.compile(step)
    return steps[method]


def _variables(models, samplers):
    seed_states = [v for sampler in samplers if sampler is not None for v in sampler.variables]
    model_variables = []
    for model in models:
        # A model of the generation protocol need not be a Keras model: one without Keras
        # variables has its values compiled in as constants.
        model_variables.extend(getattr(model, "trainable_variables", []))
        model_variables.extend(getattr(model, "non_trainable_variables", []))
    return seed_states, model_variables


def _jax_jit(function, models, samplers):
    import jax

    compiled = {}

    def jitted(seed_states, model_variables):
        @jax.jit
        def stateless(seed_values, model_values, *args):
            mapping = zip(seed_states + model_variables, list(seed_values) + list(model_values))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                outputs = function(*args)
            new_seeds = []
            for variable, value in zip(seed_states, seed_values):
                current = scope.get_current_value(variable)
                new_seeds.append(value if current is None else current)
            return outputs, new_seeds

        return stateless

    def call(*args):
        # The variables are listed at each call: a model changed since (e.g. quantized)
        # gets a new compiled function instead of one that reads variables it lost.
        seed_states, model_variables = _variables(models, samplers)
        key = tuple(id(v) for v in seed_states + model_variables)
        if key not in compiled:
            compiled.clear()
            compiled[key] = jitted(seed_states, model_variables)
        # `.value`: the arrays themselves (sharded as the variables are under a
        # keras.distribution), read at each call, so updated weights are used.
        outputs, new_seeds = compiled[key](
            [v.value for v in seed_states], [v.value for v in model_variables], *args
        )
        for variable, value in zip(seed_states, new_seeds):
            variable.assign(value)
        return outputs

    return call


def seeded_while_loop(cond, body, loop_vars, samplers, maximum_iterations):
    """`keras.ops.while_loop(cond, body, loop_vars, maximum_iterations)` for a `body` that
    draws random numbers from `samplers`' seed generators.

    On JAX a loop body is traced once, so a seed generator advanced inside it would leak a
    traced value (`UnexpectedTracerError`) instead of advancing at each step; here the seed
    states are carried through the loop (mapped in by `keras.StatelessScope`, as keras-hub's
    `Sampler` does) and assigned once the loop ends. Other backends run the loop as it is.
    """
    seed_states, _ = _variables([], samplers)
    if keras.backend.backend() != "jax" or not seed_states:
        return ops.while_loop(cond, body, loop_vars, maximum_iterations=maximum_iterations)

    def seeded_cond(*state):
        return cond(*state[:-1])

    def seeded_body(*state):
        seed_values = state[-1]
        with keras.StatelessScope(state_mapping=zip(seed_states, seed_values)) as scope:
            outputs = body(*state[:-1])
        new_seeds = []
        for variable, value in zip(seed_states, seed_values):
            current = scope.get_current_value(variable)
            new_seeds.append(value if current is None else current)
        return (*outputs, new_seeds)

    state = ops.while_loop(
        seeded_cond,
        seeded_body,
        (*loop_vars, [v.value for v in seed_states]),
        maximum_iterations=maximum_iterations,
    )
    for variable, value in zip(seed_states, state[-1]):
        variable.assign(value)
    return tuple(state[:-1])
