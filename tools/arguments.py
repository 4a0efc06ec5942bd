"""The tools' arguments parsed without click: seed and index ranges, devices. They raise
ValueError with a one-line message; tools/cli.py turns it into a click error, and the
explorer's server into an HTTP error."""

import re

import torch

#----------------------------------------------------------------------------

def parse_range(text, max_count):
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]; ValueError, before anything is expanded, when
    it would hold more than `max_count` values."""
    if isinstance(text, list):
        return text
    ranges = []
    for part in str(text).split(','):
        part = part.strip()
        match = re.fullmatch(r'(-?\d{1,18})(?:-(-?\d{1,18}))?', part)
        if match is None:
            raise ValueError(f'{_shown(part)} is not a number or a range like 0-7 (in {_shown(str(text))})')
        lo, hi = int(match.group(1)), int(match.group(2) if match.group(2) is not None else match.group(1))
        if hi < lo:
            raise ValueError(f'Range {_shown(part)} runs backwards; write it as {hi}-{lo}')
        ranges.append((lo, hi))
    count = sum(hi - lo + 1 for lo, hi in ranges)
    if count > max_count:
        raise ValueError(f'{_shown(str(text))} holds {count} values; at most {max_count} are allowed here')
    return [value for lo, hi in ranges for value in range(lo, hi + 1)]


def _shown(text):
    return repr(text[:40]) + ('...' if len(text) > 40 else '')  # Escaped and short: it may come from a web request.


def default_device(device=None):
    """torch.device of the name given, else CUDA when present, else the CPU."""
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f'Unknown device {device!r}; use cpu, cuda or cuda:N.') from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError('CUDA was asked for, but no CUDA device is available; use the cpu.')
    return device

#----------------------------------------------------------------------------
