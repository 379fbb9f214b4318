import torch
import torch.nn as nn


class Model(nn.Module):
    """A vanilla RNN cell that keeps its hidden state in a plain tensor attribute (not a buffer)
    and replaces it in forward: torch.export refuses the mutated constant as written."""

    def __init__(self, input_size, hidden_size, output_size, batch):
        super().__init__()
        self.hidden = torch.randn(batch, hidden_size)
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        self.hidden = self.hidden.to(x.device)
        combined = torch.cat((x, self.hidden), dim=1)
        self.hidden = torch.tanh(self.i2h(combined))
        return self.h2o(self.hidden)


def get_inputs():
    return [torch.randn(4, 8)]


def get_init_inputs():
    return [8, 16, 5, 4]
