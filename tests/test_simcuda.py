"""The simulated CUDA device (tests/simcuda.py) refuses what CUDA refuses and accepts what it accepts, so a
test that passes under it says something about a GPU run."""

import io

import pytest
import torch

from simcuda import SIM_DEVICE_NAME, SimCudaTensor, SimDeviceError, simulated_cuda

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def sim():
    with simulated_cuda():
        yield torch.device("cuda")


def test_cuda_tensors_report_the_device_and_keep_real_values(sim):
    a = torch.arange(4.0, device=sim)
    assert isinstance(a, SimCudaTensor) and a.device == torch.device("cuda", 0) and a.is_cuda
    b = (a * 2 + 1).sum()
    assert b.device.type == "cuda" and b.item() == 16.0 and bool(b > 0)
    assert torch.tensor([1, 2], device=sim).device.type == "cuda"
    assert torch.zeros(2).to(sim).device.type == "cuda" and torch.zeros(2).cuda().device.type == "cuda"
    assert a.new_tensor([1.0]).device.type == "cuda" and a.new_zeros(3).device.type == "cuda"
    assert torch.randn(3, generator=torch.Generator("cuda"), device=sim).device.type == "cuda"


@pytest.mark.parametrize("case", ["binary op", "cat", "matmul", "cuda scalar with cpu", "index into cpu", "where",
                                  "put cpu values"])
def test_mixing_devices_fails_as_on_cuda(sim, case):
    cuda, cpu = torch.ones(3, device=sim), torch.ones(3)
    ops = {"binary op": lambda: cuda + cpu,
           "cat": lambda: torch.cat([cuda, cpu]),
           "matmul": lambda: torch.ones(2, 3, device=sim) @ torch.ones(3, 2),
           "cuda scalar with cpu": lambda: cpu * torch.tensor(2.0, device=sim),
           "index into cpu": lambda: cpu[torch.tensor([0], device=sim)],
           "where": lambda: torch.where(cpu > 0, cuda, cuda),
           "put cpu values": lambda: cuda.__setitem__(torch.tensor([0, 1]), torch.tensor([5.0, 6.0]))}
    with pytest.raises(SimDeviceError):
        ops[case]()


def test_what_cuda_accepts_across_devices_is_accepted(sim):
    cuda = torch.arange(4.0, device=sim)
    assert (cuda * torch.tensor(2.0)).tolist() == [0.0, 2.0, 4.0, 6.0]  # a 0-dim CPU tensor is a CPU scalar
    assert cuda[torch.tensor([1, 3])].tolist() == [1.0, 3.0]          # CPU indices into a CUDA tensor
    cuda[torch.tensor([0])] = torch.tensor(9.0)
    assert cuda.tolist()[0] == 9.0
    cpu = torch.empty(4)
    cpu.copy_(cuda)                                                    # copies cross devices
    assert cpu.tolist() == cuda.tolist()


def test_leaving_the_device_takes_an_explicit_copy(sim):
    cuda = torch.arange(3.0, device=sim)
    with pytest.raises(TypeError, match="Use Tensor.cpu"):
        cuda.numpy()
    host = cuda.cpu()
    assert type(host) is torch.Tensor and host.device.type == "cpu" and host.numpy().tolist() == [0.0, 1.0, 2.0]
    assert type(cuda.to("cpu")) is torch.Tensor and type(cuda.to(torch.zeros(1))) is torch.Tensor
    host += 1
    assert cuda.tolist() == [0.0, 1.0, 2.0]  # a copy, not a view


def test_generators_must_be_on_the_device_they_draw_for(sim):
    cpu_gen, cuda_gen = torch.Generator(), torch.Generator(sim)
    assert isinstance(cuda_gen, torch.Generator) and cuda_gen.device.type == "cuda"
    assert isinstance(cuda_gen.manual_seed(0), torch.Generator)
    with pytest.raises(SimDeviceError, match="generator"):
        torch.randn(3, generator=cpu_gen, device=sim)
    with pytest.raises(SimDeviceError, match="generator"):
        torch.ones(3, device=sim).normal_(generator=cpu_gen)
    with pytest.raises(SimDeviceError, match="generator"):
        torch.randn(3, generator=cuda_gen)  # a CPU tensor from a CUDA generator
    torch.rand(1, generator=cpu_gen)


def test_a_model_trains_on_the_device_in_bf16_autocast_and_channels_last(sim):
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.BatchNorm3d(4), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)  # built before the move, as CUDA allows
    weight = model[0].weight
    model.to(sim).to(memory_format=torch.channels_last_3d)
    assert model[0].weight is weight and weight.device.type == "cuda"
    x = torch.randn(2, 3, 4, 8, 8).to(sim, non_blocking=True).contiguous(memory_format=torch.channels_last_3d)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = model(x)
    assert logits.dtype == torch.bfloat16 and logits.device.type == "cuda"
    loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([0, 1], device=sim))
    loss.backward()
    assert weight.grad.device.type == "cuda" and weight.grad.dtype == torch.float32
    before = weight.detach().cpu().clone()
    optimizer.step()
    assert not torch.equal(before, weight.detach().cpu())
    with pytest.raises(SimDeviceError):
        torch.nn.functional.cross_entropy(logits.float(), torch.tensor([0, 1]))  # CPU targets


def test_saved_state_loads_on_the_cpu(sim):
    model = torch.nn.Linear(3, 2).to(sim)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert state["weight"].device.type == "cpu"
    fresh = torch.nn.Linear(3, 2).to(sim)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.weight.detach().cpu(), model.weight.detach().cpu())


def test_autocast_defaults_to_cudas_float16(sim):
    with torch.autocast("cuda"):
        y = torch.nn.functional.linear(torch.ones(2, 3, device=sim), torch.ones(4, 3, device=sim))
    assert y.dtype == torch.float16 and y.device.type == "cuda" and y.cpu().tolist() == [[3.0] * 4] * 2


def test_torch_cuda_answers_for_one_device_and_is_restored():
    real = torch.cuda.is_available()
    with simulated_cuda():
        assert torch.cuda.is_available() and torch.cuda.device_count() == 1
        assert torch.cuda.get_device_name(0) == SIM_DEVICE_NAME and torch.cuda.is_bf16_supported()
    assert torch.cuda.is_available() == real and torch.Generator("cpu").device.type == "cpu"
    with pytest.raises(SimDeviceError, match="outside simulated_cuda"):
        with simulated_cuda():
            leaked = torch.ones(2, device="cuda")
        leaked + 1
