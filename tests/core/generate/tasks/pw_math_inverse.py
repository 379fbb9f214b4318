import torch
import torch.nn as nn


class Model(nn.Module):
    """Transcendentals without a Triton primitive (inverse trig, hyperbolic and their inverses,
    atan2 over all quadrants) and integer bit shifts, including out-of-range shift amounts."""

    def __init__(self):
        super().__init__()

    def forward(self, x, y, n, s):
        t = torch.tanh(x)
        trig = torch.asin(t) + torch.acos(t * 0.999) * 2.0 + torch.atan(x * 3.0)
        quad = torch.atan2(x, y) - torch.arctan2(y * 0.5, x)
        hyp = torch.sinh(x * 4.0) + torch.cosh(x * 4.0) * 0.5
        inv = torch.asinh(x * 50.0) + torch.acosh(1.0 + x.abs() * 20.0) + torch.atanh(t * 0.99)
        bits = (n << s) + (n >> s) + (n >> 2) + torch.bitwise_left_shift(n, 3)
        small = n.to(torch.int8) << 3
        return trig, quad, hyp, inv, bits, small, n.to(torch.uint8) >> s


def get_inputs():
    return [torch.randn(4, 33), torch.randn(4, 33), torch.randint(-1000, 1000, (4, 33), dtype=torch.int32),
            torch.randint(-3, 40, (4, 33), dtype=torch.int32)]


def get_init_inputs():
    return []
