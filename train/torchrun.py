"""`torchrun` for this project: torch.distributed.run with one fix. torch 1.13's launcher parses
--redirects/--tee "0" into None on Python 3.11 (IntFlag iteration skips the zero member), which
crashes every launch; this maps the digits explicitly, then hands over to torch's own main.
Usage as torchrun: python -m train.torchrun --standalone --nproc_per_node 2 -m train.train ...
Not a launcher of its own."""
import re

from torch.distributed import run
from torch.distributed.elastic.multiprocessing import api


def _from_str(vm):
    vm = str(vm)
    if re.match(r"^[0123]$", vm):
        return api.Std(int(vm))
    if re.match(r"^(\d:[0123],)*(\d:[0123])$", vm):
        return {int(k): api.Std(int(v)) for k, v in (p.split(":") for p in vm.split(","))}
    raise ValueError(f"{vm} does not match {api._VALUE_REGEX} or {api._MAPPING_REGEX}")


api.Std.from_str = staticmethod(_from_str)

if __name__ == "__main__":
    run.main()
