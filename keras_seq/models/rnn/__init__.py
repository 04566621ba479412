"""The recurrent language model: the `RNNBackbone`, its presets and the `RNNCausalLM` task."""
