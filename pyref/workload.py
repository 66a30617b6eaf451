"""What an end-to-end run computes: a config's integer model, its compiled image and the
images it classifies, chosen by seed."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pyref import compiler, data, intmodel
from pyref.config import ConfigError, get_config, get_hw_config


@dataclass
class Workload:
    """Members
    -------
    model : intmodel.IntModel
    image : compiler.Image
    codes : (n, patches, patch_pixels) ACT codes of the images
    state : the float parameters
    labels, patch_labels : the tasks' labels, or None for random images
    """

    model: intmodel.IntModel
    image: compiler.Image
    codes: np.ndarray
    state: dict
    labels: np.ndarray | None = None
    patch_labels: np.ndarray | None = None

    def expected(self, task: int) -> np.ndarray:
        """The integer model's logits of every image for ``task``, as the outputs hold them
        (one row per output row)."""
        logits, _ = self.model.forward(self.codes, self.image.check_task(task))
        return logits.reshape(len(self.codes), -1, logits.shape[-1])

    def float_logits(self, task: int) -> np.ndarray:
        """The float model's logits on the same (quantised) inputs, shaped like `expected`."""
        import torch

        from pyref.formats import ACT
        from pyref.model import MultiTaskViT

        float_model = MultiTaskViT(self.image.config)
        float_model.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32))
                                     for k, v in self.state.items()})
        with torch.no_grad():
            logits, _ = float_model.eval()(torch.from_numpy(
                ACT.dequantise(self.codes).astype(np.float32)), task)
        return logits.numpy().reshape(len(self.codes), -1, logits.shape[-1])

    def linear_macs(self, task: int) -> int:
        """Useful multiply-accumulates of one image on the linear unit (padding excluded):
        every linear layer, each token's ``top_k`` experts, and the task's head."""
        c = self.image.config
        layers = {layer.name: layer for layer in c.linear_layers()}
        dense = sum(layers[n].macs for n in ("qkv", "proj", "fc1", "fc2"))
        attention_side = sum(layers[n].macs for n in ("qkv", "proj"))
        expert = c.tokens * c.top_k * 2 * c.dim * c.expert_hidden
        moe = attention_side + layers["router"].macs + expert
        blocks = sum(moe if c.is_moe(b) else dense for b in range(c.depth))
        return layers["patch_embed"].macs + blocks + layers[f"head{task}"].macs


def parameters_of(config, seed: int) -> dict:
    """The shipped checkpoint of ``config`` when there is one for its shape, else random
    weights (seeded) in the float model's own initialisation."""
    import torch

    from pyref.model import MultiTaskViT, load_checkpoint, parameters

    try:
        return parameters(load_checkpoint(config))
    except ConfigError:
        torch.manual_seed(seed)
        return parameters(MultiTaskViT(config))


def workload(config_name: str, hw_name: str, images: int, seed: int, memory_words: int,
             depth: int | None = None) -> Workload:
    """``images`` test images of ``config_name`` (random ones when it has no data set),
    chosen by ``seed``, and the model compiled for parameter set ``hw_name``. The images
    of a seed do not depend on ``images``: asking for fewer gives the first of them.
    ``depth`` keeps only the first blocks (a shorter program for long simulations)."""
    config = get_config(config_name)
    if depth is not None:
        if not 1 <= depth <= config.depth:
            raise ConfigError(f"depth {depth}: config '{config.name}' has 1..{config.depth} "
                              "blocks")
        config = replace(config, depth=depth)
    hw = get_hw_config(hw_name)
    state = parameters_of(config, seed)
    model = intmodel.IntModel(config, state, hw.parallelism)
    image = compiler.compile_model(config, hw, model.p, memory_words)
    rng = np.random.default_rng(seed)
    if data.has_dataset(config):
        test = data.load(config, "test")
        # A prefix of one seeded order, so a run of n images starts with a run of fewer.
        split = test.subset(rng.permutation(len(test))[:images])
        codes = model.quantise_input(data.patchify(split.images, config.patch))
        return Workload(model, image, codes, state, split.labels, split.patch_labels)
    pixels = rng.uniform(0, 1, (images, config.patches, config.patch_pixels))
    return Workload(model, image, model.quantise_input(pixels), state)
