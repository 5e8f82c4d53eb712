"""MMENGINE-TORCH-26-WEIGHTS-ONLY: a real mmengine training checkpoint, then resuming from it.

Trains a tiny model for one epoch with mmengine's Runner (CPU), which writes epoch_1.pth through
its CheckpointHook, then starts a second Runner with resume=True, which loads that checkpoint
with mmengine's own loader. Prints the versions and each step's outcome (the error's first line).
"""
import os
import tempfile

import torch
from torch import nn
from torch.utils.data import Dataset


def main():
    import mmengine
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Tiny(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 1)

        def forward(self, inputs, labels, mode="tensor"):
            out = self.linear(inputs)
            if mode == "loss":
                return {"loss": nn.functional.mse_loss(out, labels)}
            return out

    class Data(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return {"inputs": torch.randn(4, generator=g), "labels": torch.randn(1, generator=g)}

    def runner(work_dir, epochs, resume):
        return Runner(model=Tiny(), work_dir=work_dir, resume=resume,
                      train_dataloader=dict(dataset=Data(), sampler=dict(type="DefaultSampler", shuffle=False),
                                            batch_size=4, collate_fn=dict(type="default_collate")),
                      optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
                      train_cfg=dict(by_epoch=True, max_epochs=epochs),
                      default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)),
                      default_scope="mmengine")

    print("mmengine %s, torch %s, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=%s" % (
        mmengine.__version__, torch.__version__, os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "")))
    with tempfile.TemporaryDirectory() as work:
        runner(work, 1, False).train()
        print("train one epoch: ok, wrote", sorted(f for f in os.listdir(work) if f.endswith(".pth")))
        try:
            runner(work, 2, True).train()
            print("resume from the checkpoint: ok")
        except Exception as exc:  # what a user sees
            print("resume from the checkpoint: %s: %s" % (type(exc).__name__, str(exc).splitlines()[0]))


if __name__ == "__main__":
    main()
