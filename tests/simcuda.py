"""A simulated CUDA device for CPU-only test machines: the engine's GPU code paths, run for real.

Every CI machine is CPU-only, so ``device.type == "cuda"`` branches (bf16 autocast, channels_last_3d, pinned
loaders, non-blocking copies, generators on the device, the every-N-steps finite check) would otherwise first run
on a user's GPU. Under ``simulated_cuda()``:

* ``torch.device("cuda")`` tensors are ``SimCudaTensor``: a CPU tensor (``elem``) holding the real values, that
  reports ``device == cuda:0`` and ``is_cuda``. Its C++ device stays ``cpu`` (as FakeTensor keeps ``meta``), so
  no CUDA runtime is ever touched.
* A dispatch mode sees every aten op and enforces PyTorch's device rules as CUDA does: tensors of one op share a
  device, except 0-dim CPU tensors (CPU scalars) next to CUDA ones, CPU index tensors for indexing a CUDA
  tensor, and cross-device copies; a ``generator`` must be on the device it draws for. A breach raises
  ``SimDeviceError`` (a ``RuntimeError``, like CUDA's) naming the op. ``.numpy()`` of a CUDA tensor is a
  ``TypeError``, as on a GPU.
* ``torch.autocast("cuda", bfloat16)`` runs as CPU autocast, which casts the same op families (convolutions and
  matrix products are computed in fp32 and given the low-precision op's output dtypes: bf16 kernels are very
  slow on CPUs without bf16 units). ``torch.Generator`` takes ``"cuda"``, the ``torch.cuda`` and
  ``torch.accelerator`` calls the project makes answer for one device named ``SIM_DEVICE_NAME``, and pinning
  memory is a no-op.

Values are computed as on the CPU, so a run under the simulator gives real metrics; the random streams of CUDA
generators, speeds and memory are not CUDA's (never record a figure from it). Not simulated: NCCL/DDP on CUDA,
``torch.compile``, kernel-specific numerics. ``python tests/simcuda.py severe ARGS`` runs the CLI under it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from unittest import mock

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode, return_and_correct_aliasing
from torch.utils._pytree import tree_flatten, tree_map

SIM_DEVICE = torch.device("cuda", 0)
SIM_DEVICE_NAME = "Simulated CUDA (CPU, tests/simcuda.py)"
CPU = torch.device("cpu")
aten = torch.ops.aten
_REAL_GENERATOR = torch.Generator
_state = threading.local()  # active: simulated_cuda() is on; ambient: the device stack of torch calls under way


class SimDeviceError(RuntimeError):
    """A cross-device use that CUDA would refuse."""


def _is_sim_device(device) -> bool:
    return device is not None and torch.device(device).type == "cuda"


class SimCudaTensor(torch.Tensor):
    """A tensor on the simulated CUDA device; its values live in ``elem`` (a plain CPU tensor)."""

    elem: torch.Tensor
    __torch_function__ = torch._C._disabled_torch_function_impl

    @staticmethod
    def __new__(cls, elem: torch.Tensor):
        if isinstance(elem, SimCudaTensor) or elem.device.type != "cpu":
            raise TypeError(f"SimCudaTensor wraps a plain CPU tensor, not {type(elem).__name__} on {elem.device}")
        r = torch.Tensor._make_wrapper_subclass(
            cls, elem.size(), strides=elem.stride(), storage_offset=elem.storage_offset(), dtype=elem.dtype,
            layout=elem.layout, device=CPU, requires_grad=elem.requires_grad)
        r.elem = elem
        return r

    # Python sees CUDA; C++ (device guards, kernels) sees the CPU
    @property
    def device(self):
        return SIM_DEVICE

    @property
    def is_cuda(self):
        return True

    def get_device(self):
        return SIM_DEVICE.index

    def numpy(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to "
                        "host memory first.")

    def __array__(self, *args, **kwargs):
        return self.numpy()

    def tolist(self):
        return self.cpu().tolist()

    def as_subclass(self, cls):
        """``x.as_subclass(C)`` of a CUDA tensor: an alias on the device, of class C (a torchvision ``Video``,
        say) or plain. C++ would alias with dispatch modes excluded, out of the simulation, so the alias is taken
        through the mode (keeping the autograd link) and given a class that is both simulated and C."""
        target = SimCudaTensor if cls is torch.Tensor else _on_device_class(cls)
        if type(self) is target:
            return self
        out = torch.ops.aten.alias.default(self)
        out.__class__ = target
        return out

    def __repr__(self):
        return f"SimCudaTensor({self.elem!r})"

    def __reduce_ex__(self, protocol):  # torch.save of a CUDA tensor: saved as its values (loaded on the CPU)
        return self.elem.detach().clone().__reduce_ex__(protocol)

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        copy = SimCudaTensor(self.elem.detach().clone())
        if isinstance(self, torch.nn.Parameter) or getattr(self, "_is_param", False):
            copy = torch.nn.Parameter(copy, requires_grad=self.requires_grad)
        else:
            copy.requires_grad_(self.requires_grad)
        memo[id(self)] = copy
        return copy

    # a traceable wrapper subclass: nn.Module.to() swaps it into the existing Parameter objects (as .data= does
    # on CUDA), so an optimiser built before the move still holds the model's parameters
    def __tensor_flatten__(self):
        return ["elem"], None

    @staticmethod
    def __tensor_unflatten__(inner, meta, outer_size, outer_stride):
        return SimCudaTensor(inner["elem"])

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        # only reached without the mode (a tensor that outlived simulated_cuda()): the device is gone
        raise SimDeviceError(f"{func}: a simulated CUDA tensor was used outside simulated_cuda()")


@functools.lru_cache(maxsize=None)
def _on_device_class(cls: type) -> type:
    """A tensor subclass (torchvision's tv_tensors) on the simulated device. Its ops run with torch functions
    disabled, so they return plain device tensors, as a tv_tensor's ops do."""
    if issubclass(cls, SimCudaTensor):
        return cls
    return type(f"SimCuda{cls.__name__}", (SimCudaTensor, cls), {})


class SimCudaGenerator(torch.Generator):
    """``torch.Generator("cuda")``: a CPU generator that reports the CUDA device."""

    @property
    def device(self):
        return SIM_DEVICE


# ops that may take tensors of both devices, as on CUDA
_CROSS_DEVICE_OK = {aten._to_copy.default, aten.copy_.default, aten.copy.default, aten._copy_from.default,
                    aten._copy_from_and_resize.default, aten.lift_fresh.default, aten.lift_fresh_copy.default,
                    aten._pin_memory.default, aten.is_pinned.default}
# CUDA accepts CPU index tensors (the indices are copied to the device); `self` decides the device
_INDEX_OPS = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default,
              aten._unsafe_index.Tensor, aten._unsafe_index_put.default}


def _tensors(tree) -> list:
    return [x for x in tree_flatten(tree)[0] if isinstance(x, torch.Tensor)]


def _device_name(t: torch.Tensor) -> str:
    return "cuda:0" if isinstance(t, SimCudaTensor) else str(t.device)


def _check_devices(func, args, kwargs, tensors: list) -> None:
    """``tensors``: every tensor of ``args`` and ``kwargs`` (``self`` first)."""
    if func in _CROSS_DEVICE_OK:
        return
    if func in _INDEX_OPS:
        self_t = args[0]
        if isinstance(self_t, SimCudaTensor):
            # indices may be on the CPU (they are copied over); values put must be on the device or a CPU scalar
            values = args[2] if len(args) > 2 else kwargs.get("values")
            if isinstance(values, torch.Tensor) and not isinstance(values, SimCudaTensor) and values.dim() > 0:
                raise SimDeviceError(f"Expected all tensors to be on the same device, but found at least two "
                                     f"devices, cpu, cuda:0! (simulated CUDA, op {func}: values on the CPU)")
            return
        if any(isinstance(t, SimCudaTensor) for t in tensors[1:]):
            raise SimDeviceError(f"{func}: indices should be either on cpu or on the same device as the indexed "
                                 "tensor (cpu), but a cuda:0 tensor was given")
        return
    # a 0-dim CPU tensor is a "CPU scalar": accepted next to CUDA tensors; anything else must share a device
    devices = {_device_name(t) for t in tensors if isinstance(t, SimCudaTensor) or t.dim() > 0}
    if len(devices) > 1:
        raise SimDeviceError(f"Expected all tensors to be on the same device, but found at least two devices, "
                             f"{', '.join(sorted(devices))}! (simulated CUDA, op {func})")


def _unwrap(x):
    return x.elem if isinstance(x, SimCudaTensor) else x


def _wrap(x):
    if isinstance(x, torch.Tensor) and not isinstance(x, SimCudaTensor) and x.device.type == "cpu":
        return SimCudaTensor(x)
    return x


# bf16 convolutions and matrix products are very slow on many CPUs (no native bf16 units): on the simulated
# device they are computed in fp32 and their outputs given the dtypes the bf16 op has (so dtype behaviour under
# autocast is CUDA's; values differ from a bf16 kernel's by rounding only)
_LOW = (torch.bfloat16, torch.float16)
_FP32_COMPUTE = {aten.convolution.default, aten.convolution_backward.default, aten.mm.default, aten.bmm.default,
                 aten.addmm.default, aten.baddbmm.default}


def _compute(func, args, kwargs):
    if func not in _FP32_COMPUTE or not any(t.dtype in _LOW for t in _tensors((args, kwargs))):
        return func(*args, **kwargs)

    def meta(t):
        if not isinstance(t, torch.Tensor):
            return t
        return torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device="meta")

    def up(t):
        return t.float() if isinstance(t, torch.Tensor) and t.dtype in _LOW else t

    expected = func(*tree_map(meta, args), **tree_map(meta, kwargs))  # the bf16 op's output dtypes
    out = func(*tree_map(up, args), **tree_map(up, kwargs))
    flat_out, spec = tree_flatten(out)
    flat_expected = tree_flatten(expected)[0]
    return spec.unflatten([o.to(e.dtype) if isinstance(o, torch.Tensor) else o
                           for o, e in zip(flat_out, flat_expected)])


class _SimCudaMode(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        tensors = _tensors((args, kwargs))
        _check_devices(func, args, kwargs, tensors)
        inputs_on_device = any(isinstance(t, SimCudaTensor) for t in tensors)
        out_on_device = inputs_on_device  # .to(dtype) and other ops keep their inputs' device
        if kwargs.get("device") is not None:  # factories and .to(device): the kwarg decides
            requested = torch.device(kwargs["device"])
            # C++ (autograd formulas, composite ops) passes a wrapper's own C++ device, "cpu": within a call
            # on simulated tensors that means the simulated device
            out_on_device = requested.type == "cuda" or (requested.type == "cpu" and _ambient() == "cuda")
            if out_on_device:
                kwargs["device"] = CPU
        if func._schema.is_mutable and args and isinstance(args[0], torch.Tensor):
            out_on_device = isinstance(args[0], SimCudaTensor)  # in place: the tensor written decides
        if kwargs.get("pin_memory"):
            kwargs["pin_memory"] = False
        if func is aten._pin_memory.default:
            return args[0]
        if func is aten.is_pinned.default:
            return False
        if not inputs_on_device and not out_on_device:
            return func(*args, **kwargs)  # a CPU op: nothing to wrap or re-alias
        out = _compute(func, tree_map(_unwrap, args), tree_map(_unwrap, kwargs))
        if out_on_device:  # else already plain CPU tensors: computed from the unwrapped values
            out = tree_map(_wrap, out)
        if func._schema.is_mutable or any(r.alias_info for r in func._schema.returns):
            base = next((t for t in _tensors(args) if isinstance(t, SimCudaTensor)), None)
            if base is not None and type(base) is not SimCudaTensor:  # a view keeps its base's class
                for t in _tensors(out):
                    if type(t) is SimCudaTensor:
                        t.__class__ = type(base)
            return return_and_correct_aliasing(func, args, kwargs, out)
        return out


# constructors that copy data to their device in C++ with Python dispatch excluded: the mode never sees them
_DATA_CONSTRUCTORS = {torch.tensor, torch.as_tensor, torch.asarray}


def _move(func, args, kwargs):
    """``Tensor.cpu/.cuda/.to`` where C++ would read a wrapper's CPU device (``aten::to`` returns ``self`` when
    the device already matches): the target is taken from Python's view, and leaving or entering the simulated
    device is a real copy (``_to_copy``). None: nothing to correct."""
    self_t, rest = args[0], list(args[1:])
    if func is torch.Tensor.cpu:
        device, dtype, memory_format = CPU, None, kwargs.get("memory_format", torch.preserve_format)
        non_blocking = False
    elif func is torch.Tensor.cuda:
        device, dtype, memory_format = SIM_DEVICE, None, kwargs.get("memory_format", torch.preserve_format)
        non_blocking = bool(kwargs.get("non_blocking", False))
    else:
        other = rest[0] if rest and isinstance(rest[0], torch.Tensor) else kwargs.get("other")
        if isinstance(other, torch.Tensor):  # .to(other): other's device as Python sees it
            device, dtype, memory_format = other.device, other.dtype, torch.preserve_format
            non_blocking = bool(rest[1] if len(rest) > 1 else kwargs.get("non_blocking", False))
        else:
            device, dtype, non_blocking, memory_format = torch._C._nn._parse_to(*rest, **kwargs)
            memory_format = torch.preserve_format if memory_format is None else memory_format
    here = SIM_DEVICE if isinstance(self_t, SimCudaTensor) else self_t.device
    target = here if device is None else torch.device(device)
    if target.type == "cuda" and target.index is None:
        target = SIM_DEVICE
    if target == here:
        if dtype is None or dtype == self_t.dtype:
            if memory_format in (torch.preserve_format, None) or self_t.is_contiguous(memory_format=memory_format):
                return self_t  # no copy, as torch
        return None  # a dtype or layout change on the same device: dispatches normally
    if here.type != "cuda" and target.type != "cuda":
        return None  # CPU to CPU (or other devices): not ours
    with _ambient_device(target.type):  # an explicit move: "cpu" here means the CPU
        return torch.ops.aten._to_copy.default(self_t, dtype=dtype or self_t.dtype, device=target,
                                               non_blocking=non_blocking, memory_format=memory_format)


def _ambient() -> str | None:
    stack = getattr(_state, "ambient", None)
    return stack[-1] if stack else None


@contextlib.contextmanager
def _ambient_device(kind: str):
    stack = _state.__dict__.setdefault("ambient", [])
    stack.append(kind)
    try:
        yield
    finally:
        stack.pop()


def _call_kind(args, kwargs) -> str:
    """The device a top-level torch call works on: simulated CUDA when any tensor argument is on it or it asks
    for ``device="cuda"``; else the CPU."""
    if any(isinstance(t, SimCudaTensor) for t in _tensors((args, kwargs))):
        return "cuda"
    device = kwargs.get("device")
    return "cuda" if device is not None and _is_sim_device(device) else "cpu"


def _check_generator(func, args, kwargs) -> None:
    """A ``generator`` must be on the device it draws for (checked here: below, in the dispatch mode, C++ hands
    over a new plain Generator object, so the simulated one is no longer recognisable)."""
    gen = kwargs.get("generator")
    if not isinstance(gen, torch._C.Generator):
        return
    if kwargs.get("device") is not None:
        on_device = _is_sim_device(kwargs["device"])
    else:  # in-place draws (x.normal_) and tensor-input draws (bernoulli, multinomial): the tensor's device
        on_device = any(isinstance(t, SimCudaTensor) for t in _tensors(args))
    if isinstance(gen, SimCudaGenerator) != on_device:
        want, got = ("cuda", "cpu") if on_device else ("cpu", "cuda")
        raise SimDeviceError(f"Expected a '{want}' device type for generator but found '{got}' "
                             f"(simulated CUDA, {getattr(func, '__name__', func)})")


class _SimCudaFunctionMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        with _ambient_device(_call_kind(args, kwargs)):
            return self._call(func, args, kwargs)

    @staticmethod
    def _call(func, args, kwargs):
        _check_generator(func, args, kwargs)
        if func in _DATA_CONSTRUCTORS and _is_sim_device(kwargs.get("device")):
            kwargs["device"] = CPU
            return func(*args, **kwargs).to(SIM_DEVICE)
        if func in (torch.Tensor.cpu, torch.Tensor.to, torch.Tensor.cuda) and args:
            moved = _move(func, args, kwargs)
            if moved is not None:
                return moved
        if func is torch.Tensor.new_tensor and args and isinstance(args[0], SimCudaTensor):
            target = kwargs.pop("device", SIM_DEVICE)
            out = func(args[0].elem, *args[1:], **kwargs)
            return out.to(SIM_DEVICE) if _is_sim_device(target) else out.to(target)
        return func(*args, **kwargs)


class _SimAutocast(torch.amp.autocast):
    """``torch.autocast("cuda", ...)`` as CPU autocast, which casts the same op families; CUDA's default dtype
    (float16) when none is given."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        if device_type == "cuda":
            device_type = "cpu"
            dtype = torch.float16 if dtype is None else dtype
        super().__init__(device_type, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class _GeneratorFactory(type):
    """The ``torch.Generator`` stand-in's type: ``torch.Generator("cuda")`` gives a ``SimCudaGenerator``, any
    other device a real generator, and ``isinstance(g, torch.Generator)`` holds for both."""

    def __call__(cls, device="cpu"):
        return SimCudaGenerator() if _is_sim_device(device) else _REAL_GENERATOR(device)

    def __instancecheck__(cls, obj):
        return isinstance(obj, _REAL_GENERATOR)


class _Generator(metaclass=_GeneratorFactory):
    pass


def _noop(*args, **kwargs):
    return None


def _cuda_patches() -> dict:
    """The ``torch.cuda`` calls of severe_bench and bench/, answered for one simulated device (each patch its
    own function: torch._dynamo maps every torch object to one rule)."""
    noop = lambda: functools.partial(_noop)  # noqa: E731
    return {
        "is_available": lambda: True,
        "device_count": lambda: 1,
        "is_bf16_supported": lambda *a, **k: True,
        "get_device_name": lambda *a, **k: SIM_DEVICE_NAME,
        "current_device": lambda: 0,
        "set_device": noop(),
        "synchronize": noop(),
        "empty_cache": noop(),
        "reset_peak_memory_stats": noop(),
        "max_memory_allocated": lambda *a, **k: 0,
        "manual_seed": noop(),
        "manual_seed_all": noop(),
        "_lazy_init": noop(),  # C++ factories with device="cuda" call it before dispatching to the mode
    }


def _dynamo_rules() -> None:
    """torch._dynamo (imported lazily, e.g. by torch.compile or optimisers) builds a map of every ``torch.*``
    object once; build it from the real functions before any is patched."""
    try:
        from torch._dynamo import trace_rules

        trace_rules.get_torch_obj_rule_map()
    except Exception:  # noqa: BLE001 - a torch without that private helper: nothing to prepare
        pass


class _Stream:
    """``torch.accelerator.current_stream()``: one stream, never capturing a CUDA graph."""

    device = SIM_DEVICE

    def is_capturing(self) -> bool:
        return False

    def synchronize(self) -> None:
        return None


def _accelerator_patches() -> dict:
    """``torch.accelerator``, which optimisers ask once ``torch.cuda.is_available()`` is true."""
    return {
        "is_available": lambda: True,
        "current_accelerator": lambda check_available=False: torch.device("cuda"),
        "device_count": lambda: 1,
        "current_device_index": lambda: 0,
        "current_stream": lambda device=None: _Stream(),
        "synchronize": functools.partial(_noop),
        "set_device_index": functools.partial(_noop),  # the DataLoader's pin-memory thread
    }


def _pin(data, device=None):
    """The DataLoader's pin-memory thread (outside the thread-local mode): host memory stays as it is."""
    return data


@contextlib.contextmanager
def simulated_cuda():
    """Run the body with one simulated CUDA device (see the module docstring). Not re-entrant."""
    if getattr(_state, "active", False):
        raise RuntimeError("simulated_cuda() is already active")
    from torch.utils.data._utils import pin_memory as loader_pin

    patches = [*[(torch.cuda, name, fn) for name, fn in _cuda_patches().items()],
               *[(torch.accelerator, name, fn) for name, fn in _accelerator_patches().items()],
               (torch.backends.cudnn, "version", lambda: None),  # no cuDNN is simulated: the record says so
               (loader_pin, "pin_memory", _pin),
               (torch, "autocast", _SimAutocast), (torch.amp, "autocast", _SimAutocast),
               (torch, "Generator", _Generator)]
    _dynamo_rules()
    with contextlib.ExitStack() as stack:
        for owner, name, value in patches:
            stack.enter_context(mock.patch.object(owner, name, value))
        _state.active = True
        stack.callback(setattr, _state, "active", False)
        with _SimCudaFunctionMode(), _SimCudaMode():
            yield


def main(argv: list[str] | None = None) -> int:
    """``python tests/simcuda.py severe ARGS...``: the ``severe`` CLI inside ``simulated_cuda()``;
    ``python tests/simcuda.py --script FILE ARGS...``: a Python script (bench/) instead."""
    import runpy
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    with simulated_cuda():
        if argv and argv[0] == "--script":
            sys.argv = argv[1:]
            runpy.run_path(argv[1], run_name="__main__")
            return 0
        from severe_bench.cli import main as severe_main

        try:
            severe_main(argv[1:] if argv and argv[0] == "severe" else argv)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
