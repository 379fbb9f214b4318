"""Broken: imports a module that does not exist."""

import torch.nn as nn
import triton_language_that_does_not_exist  # noqa: F401


class ModelNew(nn.Module):
    def forward(self, x, y):
        return x
