"""What the machine is doing: per-GPU numbers through NVML (`nvidia-ml-py`, imported as
`pynvml`), else CPU and RAM through psutil. No Textual here; the app samples in a worker."""

import dataclasses


@dataclasses.dataclass
class GPU:
    index: int
    name: str
    util: float | None            # %
    mem_used: float | None        # bytes
    mem_total: float | None       # bytes
    temp: float | None            # °C
    power: float | None           # W
    power_limit: float | None     # W


@dataclasses.dataclass
class DeviceSample:
    gpus: list
    note: str = ""                # why there are no GPUs ("no GPU: ...")
    cpu_percent: float | None = None
    cpu_count: int | None = None
    ram_used: float | None = None
    ram_total: float | None = None


class DeviceSampler:
    """`sample()` -> DeviceSample. `nvml` is the NVML module (default: `import pynvml`);
    tests pass a stand-in, as no GPU exists on the machines that run them."""

    def __init__(self, nvml=None):
        self.nvml = nvml
        self.handles = None
        self.reason = None
        self._psutil_primed = False

    def _init_nvml(self):
        if self.handles is not None or self.reason is not None:
            return
        try:
            if self.nvml is None:
                import pynvml

                self.nvml = pynvml
            self.nvml.nvmlInit()
            count = self.nvml.nvmlDeviceGetCount()
            self.handles = [self.nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            if not count:
                self.reason = "no GPU (NVML found none)"
        except Exception as e:  # pynvml.NVMLError_LibraryNotFound, DriverNotLoaded, ImportError...
            self.handles, self.reason = [], f"no GPU ({_short_error(e)})"

    def sample(self):
        self._init_nvml()
        gpus = [self._gpu(i, h) for i, h in enumerate(self.handles or [])]
        sample = DeviceSample(gpus=gpus, note="" if gpus else (self.reason or "no GPU"))
        if not gpus:
            self._cpu(sample)
        return sample

    def _gpu(self, index, handle):
        n = self.nvml
        name = _try(lambda: n.nvmlDeviceGetName(handle), f"GPU {index}")
        if isinstance(name, bytes):
            name = name.decode()
        util = _try(lambda: n.nvmlDeviceGetUtilizationRates(handle).gpu)
        mem = _try(lambda: n.nvmlDeviceGetMemoryInfo(handle))
        temp = _try(lambda: n.nvmlDeviceGetTemperature(handle, getattr(n, "NVML_TEMPERATURE_GPU", 0)))
        power = _try(lambda: n.nvmlDeviceGetPowerUsage(handle) / 1000.0)       # mW -> W
        limit = _try(lambda: n.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0)
        return GPU(index, name, util, getattr(mem, "used", None), getattr(mem, "total", None), temp, power, limit)

    def _cpu(self, sample):
        try:
            import psutil
        except ImportError:
            sample.note += "; psutil not installed"
            return
        # the first cpu_percent(None) has no interval to measure: 0.0; later calls are since the last
        sample.cpu_percent = psutil.cpu_percent(interval=None) if self._psutil_primed else None
        self._psutil_primed = True
        sample.cpu_count = psutil.cpu_count()
        mem = psutil.virtual_memory()
        sample.ram_used, sample.ram_total = mem.total - mem.available, mem.total

    def close(self):
        if self.handles:
            _try(self.nvml.nvmlShutdown)


def _try(fn, default=None):
    try:
        return fn()
    except Exception:
        return default


def _short_error(e):
    text = str(e) or type(e).__name__
    return text if len(text) < 60 else text[:57] + "..."


def gib(value):
    return "?" if value is None else f"{value / 2**30:.1f}"


def format_sample(sample):
    """Lines of text for the device panel."""
    if sample is None:
        return ["device: sampling..."]
    lines = []
    for g in sample.gpus:
        parts = [f"GPU{g.index} {g.name}",
                 f"util {g.util:.0f}%" if g.util is not None else "util ?",
                 f"mem {gib(g.mem_used)}/{gib(g.mem_total)} GiB",
                 f"{g.temp:.0f}°C" if g.temp is not None else "temp ?",
                 (f"{g.power:.0f}/{g.power_limit:.0f} W" if g.power_limit else f"{g.power:.0f} W")
                 if g.power is not None else "power ?"]
        lines.append(" · ".join(parts))
    if not sample.gpus:
        cpu = "CPU ?" if sample.cpu_percent is None else f"CPU {sample.cpu_percent:.0f}%"
        if sample.cpu_count:
            cpu += f" of {sample.cpu_count} cores"
        lines.append(f"{sample.note} · {cpu} · RAM {gib(sample.ram_used)}/{gib(sample.ram_total)} GiB")
    return lines
