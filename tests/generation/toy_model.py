"""A tiny recurrent language model implementing the generation protocol, with a NumPy twin.

Its next-token distribution depends on the whole history (a tanh recurrence), so greedy, beam
and exhaustive search genuinely differ, and the NumPy twin scores any sequence independently.
"""

import itertools

import numpy as np
from keras import ops


class ToyLanguageModel:
    def __init__(self, vocabulary_size=4, width=6, seed=0, scale=2.0):
        rs = np.random.RandomState(seed)
        self.vocabulary_size = vocabulary_size
        self.embedding = rs.randn(vocabulary_size, width).astype("float32")
        self.recurrent = (rs.randn(width, width) / np.sqrt(width)).astype("float32")
        self.output = (scale * rs.randn(width, vocabulary_size)).astype("float32")
        self.calls = 0

    # The protocol.
    def prefill(self, inputs, max_new_tokens):
        prompt = ops.cast(inputs, "int32")
        state = ops.zeros((ops.shape(prompt)[0], self.embedding.shape[1]))
        for t in range(prompt.shape[1]):
            state = self._step(prompt[:, t], state)
        return prompt, self._logits(state), {"state": state}

    def call_with_cache(self, token_ids, cache, index):
        self.calls += 1
        state = self._step(token_ids, cache["state"])
        return self._logits(state), {"state": state}

    def _step(self, token_ids, state):
        return ops.tanh(ops.matmul(state, self.recurrent) + ops.take(self.embedding, token_ids, 0))

    def _logits(self, state):
        return ops.matmul(state, self.output)

    # The NumPy twin.
    def log_probabilities(self, prompt, continuation):
        """Log-probability of each token of `continuation` after `prompt` (1-D int arrays)."""
        state = np.zeros(self.embedding.shape[1], "float32")
        for token in prompt:
            state = np.tanh(state @ self.recurrent + self.embedding[token])
        result = []
        for token in continuation:
            logits = state @ self.output
            logits = logits - logits.max()
            result.append(logits[token] - np.log(np.exp(logits).sum()))
            state = np.tanh(state @ self.recurrent + self.embedding[token])
        return np.array(result)

    def next_logits(self, history):
        """The logits of the token after `history` (the prompt and what followed it)."""
        state = np.zeros(self.embedding.shape[1], "float32")
        for token in history:
            state = np.tanh(state @ self.recurrent + self.embedding[token])
        return state @ self.output

    def exhaustive(self, prompt, max_new_tokens, stop_token_id=None, length_penalty=0.0):
        """Best continuation over every sequence (ending at the stop token or at the limit)."""
        best, best_score = None, -np.inf
        for tokens in itertools.product(range(self.vocabulary_size), repeat=max_new_tokens):
            tokens = list(tokens)
            if stop_token_id is not None and stop_token_id in tokens:
                end = tokens.index(stop_token_id) + 1
                if end < max_new_tokens and any(t != 0 for t in tokens[end:]):
                    continue  # count each hypothesis once: zeros after the stop
                tokens = tokens[:end]
            score = self.log_probabilities(prompt, tokens).sum() / len(tokens) ** length_penalty
            if score > best_score + 1e-6:
                best, best_score = tokens, score
        return best + [0] * (max_new_tokens - len(best)), best_score
