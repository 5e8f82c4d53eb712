"""Records of the lower layers (torch, CUDA, GPU, numpy, bitsandbytes, DeepSpeed, flash-attn,
Python and build tools): each fires on pins that have the problem and stays quiet on the
boundary release that fixed it, and its symptoms are not matched by near-miss lines.

Each environment is a requirements file read by `envdoctor check -r` in a subprocess (nothing
installed), with the target Python and, where a record needs them, GPU facts given with --fact
(what nvidia-smi would report). PATH is cut to /usr/bin:/bin so this machine's own nvcc or GPUs
cannot decide a row. That every shipped symptom is found in a noisy log is tested for all
records in test_explain.py.
"""

import json
import os
import sys
from collections import namedtuple

import pytest

from builders import assert_row, envdoctor, fact_args, pin_reports

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from envdoctor.kb.load import load, shipped_dir  # noqa: E402

Env = namedtuple("Env", "pins python facts")


def env(*pins, python="3.11", **facts):
    return Env(pins, python, facts)


# Fact keys cannot be Python keywords with dots: spell them with "__" for "." here.
ENVS = {
    # bitsandbytes 0.44 / 0.45.0 import triton.ops; triton 3.2 (torch 2.6) removed it.
    "bnb-0450-triton-320": env("bitsandbytes==0.45.0", "triton==3.2.0", "torch==2.6.0+cu124"),
    "bnb-0451-triton-320": env("bitsandbytes==0.45.1", "triton==3.2.0", "torch==2.6.0+cu124"),
    "bnb-0450-triton-310": env("bitsandbytes==0.45.0", "triton==3.1.0", "torch==2.5.1+cu124"),
    "bnb-0380-triton-320": env("bitsandbytes==0.38.0", "triton==3.2.0"),
    # DeepSpeed < 0.8.2 imports torch._six, gone in torch 2.0.
    "ds-081-torch-20": env("deepspeed==0.8.1", "torch==2.0.1+cu118"),
    "ds-082-torch-20": env("deepspeed==0.8.2", "torch==2.0.1+cu118"),
    "ds-081-torch-113": env("deepspeed==0.8.1", "torch==1.13.1+cu117", python="3.10"),
    # torch < 2.2 cpp_extension: from pkg_resources import packaging.
    "torch-212-st-70": env("torch==2.1.2+cu121", "setuptools==70.0.0"),
    "torch-212-st-82": env("torch==2.1.2+cu121", "setuptools==82.0.0"),
    "torch-212-st-71": env("torch==2.1.2+cu121", "setuptools==71.0.0"),
    "torch-220-st-70": env("torch==2.2.0+cu121", "setuptools==70.0.0"),
    # NumPy 2 against modules compiled for NumPy 1.
    "np2-old-stack": env("numpy==2.0.0", "torch==2.2.2+cu121", "pandas==2.2.1", "pyarrow==15.0.2"),
    "np2-new-stack": env("numpy==2.0.0", "torch==2.3.0+cu121", "pandas==2.2.2", "pyarrow==16.0.0"),
    "np1-old-stack": env("numpy==1.26.4", "torch==2.2.2+cu121", "pandas==2.2.1", "pyarrow==15.0.2"),
    # numpy < 1.26 has no wheels for 3.12 and its source build fails there.
    "np125-py312": env("numpy==1.25.2", python="3.12"),
    "np126-py312": env("numpy==1.26.0", python="3.12"),
    "np125-py311": env("numpy==1.25.2", python="3.11"),
    # setuptools >= 71 with packaging < 22.
    "st71-pkg21": env("setuptools==71.0.0", "packaging==21.3"),
    "st71-pkg22": env("setuptools==71.0.0", "packaging==22.0"),
    "st70-pkg21": env("setuptools==70.3.0", "packaging==21.3"),
    # torch builds against the GPU.
    "cpu-torch-gpu": env("torch==2.4.1+cpu", gpu__count=2, gpu__capability="8.0"),
    "cpu-torch-nogpu": env("torch==2.4.1+cpu", gpu__count=0),
    "cuda-torch-gpu": env("torch==2.4.1+cu121", gpu__count=2, gpu__capability="8.0"),
    "h100-cu117": env("torch==2.0.1+cu117", gpu__count=8, gpu__capability="9.0"),
    "h100-cu118": env("torch==2.0.1+cu118", gpu__count=8, gpu__capability="9.0"),
    "a100-cu117": env("torch==2.0.1+cu117", gpu__count=8, gpu__capability="8.0"),
    "rtx5090-cu126": env("torch==2.6.0+cu126", gpu__count=1, gpu__capability="12.0"),
    "b200-cu124": env("torch==2.6.0+cu124", gpu__count=8, gpu__capability="10.0"),
    "rtx5090-cu128": env("torch==2.7.0+cu128", gpu__count=1, gpu__capability="12.0"),
    # bitsandbytes picks libbitsandbytes_cudaXYZ by torch's CUDA; a wheel without it loads the CPU library.
    "bnb-0420-cu124": env("bitsandbytes==0.42.0", "torch==2.5.1+cu124"),
    "bnb-0431-cu124": env("bitsandbytes==0.43.1", "torch==2.5.1+cu124"),
    "bnb-0420-cu121": env("bitsandbytes==0.42.0", "torch==2.1.2+cu121"),
    "bnb-0441-cu126": env("bitsandbytes==0.44.1", "torch==2.7.0+cu126"),
    "bnb-0450-cu126": env("bitsandbytes==0.45.0", "torch==2.7.0+cu126"),
    "bnb-0452-cu128": env("bitsandbytes==0.45.2", "torch==2.7.0+cu128"),
    "bnb-0453-cu128": env("bitsandbytes==0.45.3", "torch==2.7.0+cu128"),
    # DeepSpeed's op builder refuses a toolkit of another CUDA major than torch's.
    "ds-nvcc118-cu121": env("deepspeed==0.14.4", "torch==2.1.2+cu121", nvcc="11.8"),
    "ds-nvcc124-cu121": env("deepspeed==0.14.4", "torch==2.1.2+cu121", nvcc="12.4"),
    "nods-nvcc118-cu121": env("torch==2.1.2+cu121", nvcc="11.8"),
    "ds-nvcc121-cu118": env("deepspeed==0.14.4", "torch==2.1.2+cu118", nvcc="12.1"),
    "ds-nvcc117-cu118": env("deepspeed==0.14.4", "torch==2.1.2+cu118", nvcc="11.7"),
    "ds-nvcc130-cu128": env("deepspeed==0.17.5", "torch==2.8.0+cu128", nvcc="13.0"),
    "ds-nvcc130-cu130": env("deepspeed==0.17.5", "torch==2.9.0+cu130", nvcc="13.0"),
    "ds-nvcc129-cu128": env("deepspeed==0.17.5", "torch==2.8.0+cu128", nvcc="12.9"),
    # torch.compile refuses new Pythons and pre-Volta GPUs.
    "torch-231-py312": env("torch==2.3.1+cu121", python="3.12"),
    "torch-240-py312": env("torch==2.4.0+cu121", python="3.12"),
    "torch-231-py311": env("torch==2.3.1+cu121", python="3.11"),
    "torch-251-py313": env("torch==2.5.1+cu124", python="3.13"),
    "torch-260-py313": env("torch==2.6.0+cu124", python="3.13"),
    "torch-251-py312": env("torch==2.5.1+cu124", python="3.12"),
    "p100-torch-220": env("torch==2.2.0+cu121", gpu__count=4, gpu__capability="6.0"),
    "v100-torch-220": env("torch==2.2.0+cu121", gpu__count=4, gpu__capability="7.0"),
    "p100-torch-201": env("torch==2.0.1+cu118", gpu__count=4, gpu__capability="6.0"),
    # flash-attn's GPU check before 2.7.3 accepts 8.x and 9.0 only.
    "fa-272-b200": env("flash-attn==2.7.2", "torch==2.7.0+cu128", gpu__count=8, gpu__capability="10.0"),
    "fa-273-b200": env("flash-attn==2.7.3", "torch==2.7.0+cu128", gpu__count=8, gpu__capability="10.0"),
    "fa-272-h100": env("flash-attn==2.7.2", "torch==2.5.1+cu124", gpu__count=8, gpu__capability="9.0"),
    # torch 2.2 links ncclCommRegister, new in NCCL 2.19.
    "torch-220-nccl-218": env("torch==2.2.0", "nvidia-cuda-runtime-cu12==12.1.105", "nvidia-nccl-cu12==2.18.1"),
    "torch-220-nccl-219": env("torch==2.2.0", "nvidia-cuda-runtime-cu12==12.1.105", "nvidia-nccl-cu12==2.19.3"),
    "torch-212-nccl-218": env("torch==2.1.2", "nvidia-cuda-runtime-cu12==12.1.105", "nvidia-nccl-cu12==2.18.1"),
    "torch-220cu118-nccl-218": env("torch==2.2.0+cu118", "nvidia-nccl-cu12==2.18.1"),
    # opencv-python(-headless) wheels are built with NumPy 2 from 4.10.0.84.
    "np2-cv-old": env("numpy==2.0.0", "opencv-python==4.10.0.82", "opencv-python-headless==4.9.0.80"),
    "np2-cv-new": env("numpy==2.0.0", "opencv-python==4.10.0.84", "opencv-python-headless==4.10.0.84"),
    "np1-cv-old": env("numpy==1.26.4", "opencv-python==4.10.0.82", "opencv-python-headless==4.9.0.80"),
    # bitsandbytes ships a Windows wheel from 0.43.0.
    "bnb-0420-windows": env("bitsandbytes==0.42.0", platform__system="Windows"),
    "bnb-0430-windows": env("bitsandbytes==0.43.0", platform__system="Windows"),
    "bnb-0420-linux": env("bitsandbytes==0.42.0", platform__system="Linux"),
    # DeepSpeed's config models: pydantic 1 API in 0.7-0.11, pydantic 2 API from 0.15.
    "ds-0110-pyd2": env("deepspeed==0.11.2", "pydantic==2.5.2"),
    "ds-0120-pyd2": env("deepspeed==0.12.0", "pydantic==2.5.2"),
    "ds-0110-pyd1": env("deepspeed==0.11.2", "pydantic==1.10.13"),
    "ds-0150-pyd1": env("deepspeed==0.15.0", "pydantic==1.10.13"),
    "ds-0144-pyd1": env("deepspeed==0.14.4", "pydantic==1.10.13"),
    "ds-0150-pyd2": env("deepspeed==0.15.0", "pydantic==2.5.2"),
    # transformers refuses 4-bit loading with bitsandbytes < 0.39.0.
    "bnb-0380-qlora": env("bitsandbytes==0.38.0", train__quantization="4bit"),
    "bnb-0390-qlora": env("bitsandbytes==0.39.0", train__quantization="4bit"),
    "bnb-0380-8bit": env("bitsandbytes==0.38.0", train__quantization="8bit"),
    # cuSPARSE of CUDA 12.4 imports nvJitLink 12.4 symbols.
    "cusparse-1231-nvjit-123": env("torch==2.5.1", "nvidia-cusparse-cu12==12.3.1.170", "nvidia-nvjitlink-cu12==12.3.101"),
    "cusparse-1231-nvjit-124": env("torch==2.5.1", "nvidia-cusparse-cu12==12.3.1.170", "nvidia-nvjitlink-cu12==12.4.127"),
    "cusparse-1210-nvjit-123": env("torch==2.1.2", "nvidia-cusparse-cu12==12.1.0.106", "nvidia-nvjitlink-cu12==12.3.101"),
    # torch 2.4 links libcudnn.so.9.
    # (PyPI's torch has no +cuXYZ label: a lockfile's CUDA runtime pin tells its CUDA.)
    "torch-240-cudnn-8": env("torch==2.4.0", "nvidia-cuda-runtime-cu12==12.1.105", "nvidia-cudnn-cu12==8.9.2.26"),
    "torch-240-cudnn-9": env("torch==2.4.0", "nvidia-cuda-runtime-cu12==12.1.105", "nvidia-cudnn-cu12==9.1.0.70"),
    "torch-231-cudnn-8": env("torch==2.3.1", "nvidia-cuda-runtime-cu12==12.1.105", "nvidia-cudnn-cu12==8.9.2.26"),
    "torch-231-cudnn-9": env("torch==2.3.1", "nvidia-cuda-runtime-cu12==12.1.105", "nvidia-cudnn-cu12==9.1.0.70"),
    "torch-240cu118-cudnn-8": env("torch==2.4.0+cu118", "nvidia-cudnn-cu12==8.9.2.26"),
    "torch-231cu118-cudnn-9": env("torch==2.3.1+cu118", "nvidia-cudnn-cu12==9.1.0.70"),
}

C = "confirmed"

# (record, environment, expected status; None: must not fire)
ROWS = [
    ("BITSANDBYTES-TRITON-OPS", "bnb-0450-triton-320", C),
    ("BITSANDBYTES-TRITON-OPS", "bnb-0451-triton-320", None),
    ("BITSANDBYTES-TRITON-OPS", "bnb-0450-triton-310", None),
    ("BITSANDBYTES-TRITON-OPS", "bnb-0380-triton-320", None),  # before bitsandbytes imported triton
    ("DEEPSPEED-TORCH-SIX", "ds-081-torch-20", C),
    ("DEEPSPEED-TORCH-SIX", "ds-082-torch-20", None),
    ("DEEPSPEED-TORCH-SIX", "ds-081-torch-113", None),
    ("TORCH-CPP-EXTENSION-PKG-RESOURCES", "torch-212-st-70", C),
    ("TORCH-CPP-EXTENSION-PKG-RESOURCES", "torch-212-st-82", C),
    ("TORCH-CPP-EXTENSION-PKG-RESOURCES", "torch-212-st-71", None),  # 71 binds packaging again
    ("TORCH-CPP-EXTENSION-PKG-RESOURCES", "torch-220-st-70", None),
    ("TORCH-NUMPY-2", "np2-old-stack", C),
    ("TORCH-NUMPY-2", "np2-new-stack", None),
    ("TORCH-NUMPY-2", "np1-old-stack", None),
    ("PANDAS-NUMPY-2", "np2-old-stack", C),
    ("PANDAS-NUMPY-2", "np2-new-stack", None),
    ("PANDAS-NUMPY-2", "np1-old-stack", None),
    ("PYARROW-NUMPY-2", "np2-old-stack", C),
    ("PYARROW-NUMPY-2", "np2-new-stack", None),
    ("PYARROW-NUMPY-2", "np1-old-stack", None),
    ("NUMPY-PYTHON-312-SOURCE-BUILD", "np125-py312", C),
    ("NUMPY-PYTHON-312-SOURCE-BUILD", "np126-py312", None),
    ("NUMPY-PYTHON-312-SOURCE-BUILD", "np125-py311", None),
    ("SETUPTOOLS-71-OLD-PACKAGING", "st71-pkg21", C),
    ("SETUPTOOLS-71-OLD-PACKAGING", "st71-pkg22", None),
    ("SETUPTOOLS-71-OLD-PACKAGING", "st70-pkg21", None),
    ("TORCH-CPU-BUILD-WITH-GPU", "cpu-torch-gpu", C),
    ("TORCH-CPU-BUILD-WITH-GPU", "cpu-torch-nogpu", None),
    ("TORCH-CPU-BUILD-WITH-GPU", "cuda-torch-gpu", None),
    ("TORCH-NO-KERNELS-FOR-HOPPER", "h100-cu117", C),
    ("TORCH-NO-KERNELS-FOR-HOPPER", "h100-cu118", None),
    ("TORCH-NO-KERNELS-FOR-HOPPER", "a100-cu117", None),
    ("TORCH-NO-KERNELS-FOR-BLACKWELL", "rtx5090-cu126", C),
    ("TORCH-NO-KERNELS-FOR-BLACKWELL", "b200-cu124", C),
    ("TORCH-NO-KERNELS-FOR-BLACKWELL", "rtx5090-cu128", None),
    ("TORCH-NO-KERNELS-FOR-BLACKWELL", "h100-cu118", None),
    ("BITSANDBYTES-NO-CUDA124-BINARY", "bnb-0420-cu124", C),
    ("BITSANDBYTES-NO-CUDA124-BINARY", "bnb-0431-cu124", None),
    ("BITSANDBYTES-NO-CUDA124-BINARY", "bnb-0420-cu121", None),
    ("BITSANDBYTES-NO-CUDA126-BINARY", "bnb-0441-cu126", C),
    ("BITSANDBYTES-NO-CUDA126-BINARY", "bnb-0450-cu126", None),
    ("BITSANDBYTES-NO-CUDA126-BINARY", "bnb-0431-cu124", None),
    ("BITSANDBYTES-NO-CUDA128-BINARY", "bnb-0452-cu128", C),
    ("BITSANDBYTES-NO-CUDA128-BINARY", "bnb-0453-cu128", None),
    ("BITSANDBYTES-NO-CUDA128-BINARY", "bnb-0450-cu126", None),
    ("DEEPSPEED-NVCC-11-TORCH-CUDA-12", "ds-nvcc118-cu121", C),
    ("DEEPSPEED-NVCC-11-TORCH-CUDA-12", "ds-nvcc124-cu121", None),
    ("DEEPSPEED-NVCC-11-TORCH-CUDA-12", "nods-nvcc118-cu121", None),
    ("DEEPSPEED-NVCC-12-TORCH-CUDA-11", "ds-nvcc121-cu118", C),
    ("DEEPSPEED-NVCC-12-TORCH-CUDA-11", "ds-nvcc117-cu118", None),
    ("DEEPSPEED-NVCC-12-TORCH-CUDA-11", "ds-nvcc118-cu121", None),
    ("DEEPSPEED-NVCC-13-TORCH-CUDA-12", "ds-nvcc130-cu128", C),
    ("DEEPSPEED-NVCC-13-TORCH-CUDA-12", "ds-nvcc130-cu130", None),
    ("DEEPSPEED-NVCC-13-TORCH-CUDA-12", "ds-nvcc129-cu128", None),
    ("TORCH-COMPILE-PYTHON-312", "torch-231-py312", C),
    ("TORCH-COMPILE-PYTHON-312", "torch-240-py312", None),
    ("TORCH-COMPILE-PYTHON-312", "torch-231-py311", None),
    ("TORCH-COMPILE-PYTHON-313", "torch-251-py313", C),
    ("TORCH-COMPILE-PYTHON-313", "torch-260-py313", None),
    ("TORCH-COMPILE-PYTHON-313", "torch-251-py312", None),
    ("TORCH-COMPILE-PRE-VOLTA", "p100-torch-220", C),
    ("TORCH-COMPILE-PRE-VOLTA", "v100-torch-220", None),
    ("TORCH-COMPILE-PRE-VOLTA", "p100-torch-201", None),  # not verified before 2.1: left out
    ("FLASH-ATTN-BLACKWELL", "fa-272-b200", C),
    ("FLASH-ATTN-BLACKWELL", "fa-273-b200", None),
    ("FLASH-ATTN-BLACKWELL", "fa-272-h100", None),
    ("FLASH-ATTN-PRE-AMPERE", "fa-272-b200", None),  # the rival cause of the same message
    ("NCCL-TOO-OLD-FOR-TORCH-22", "torch-220-nccl-218", C),
    ("NCCL-TOO-OLD-FOR-TORCH-22", "torch-220-nccl-219", None),
    ("NCCL-TOO-OLD-FOR-TORCH-22", "torch-212-nccl-218", None),
    ("OPENCV-NUMPY-2", "np2-cv-old", C),
    ("OPENCV-NUMPY-2", "np2-cv-new", None),
    ("OPENCV-NUMPY-2", "np1-cv-old", None),
    ("OPENCV-HEADLESS-NUMPY-2", "np2-cv-old", C),
    ("OPENCV-HEADLESS-NUMPY-2", "np2-cv-new", None),
    ("OPENCV-HEADLESS-NUMPY-2", "np1-cv-old", None),
    ("BITSANDBYTES-WINDOWS-BEFORE-043", "bnb-0420-windows", C),
    ("BITSANDBYTES-WINDOWS-BEFORE-043", "bnb-0430-windows", None),
    ("BITSANDBYTES-WINDOWS-BEFORE-043", "bnb-0420-linux", None),
    ("DEEPSPEED-PYDANTIC-2", "ds-0110-pyd2", C),
    ("DEEPSPEED-PYDANTIC-2", "ds-0120-pyd2", None),
    ("DEEPSPEED-PYDANTIC-2", "ds-0110-pyd1", None),
    ("DEEPSPEED-NEEDS-PYDANTIC-2", "ds-0150-pyd1", C),
    ("DEEPSPEED-NEEDS-PYDANTIC-2", "ds-0144-pyd1", None),
    ("DEEPSPEED-NEEDS-PYDANTIC-2", "ds-0150-pyd2", None),
    ("BITSANDBYTES-TOO-OLD-FOR-4BIT", "bnb-0380-qlora", C),
    ("BITSANDBYTES-TOO-OLD-FOR-4BIT", "bnb-0390-qlora", None),
    ("BITSANDBYTES-TOO-OLD-FOR-4BIT", "bnb-0380-8bit", None),
    ("XTUNER-QLORA-NEEDS-BITSANDBYTES", "bnb-0380-qlora", None),  # the rival cause: bitsandbytes absent
    ("NVJITLINK-OLDER-THAN-CUSPARSE-124", "cusparse-1231-nvjit-123", C),
    ("NVJITLINK-OLDER-THAN-CUSPARSE-124", "cusparse-1231-nvjit-124", None),
    ("NVJITLINK-OLDER-THAN-CUSPARSE-124", "cusparse-1210-nvjit-123", None),
    ("CUDNN-8-WITH-TORCH-24", "torch-240-cudnn-8", C),
    ("CUDNN-8-WITH-TORCH-24", "torch-240-cudnn-9", None),
    ("CUDNN-8-WITH-TORCH-24", "torch-231-cudnn-8", None),
    ("CUDNN-8-WITH-TORCH-24", "torch-240cu118-cudnn-8", None),  # CUDA 11 builds use nvidia-cudnn-cu11
    ("CUDNN-9-WITH-TORCH-BEFORE-24", "torch-231-cudnn-9", C),
    ("CUDNN-9-WITH-TORCH-BEFORE-24", "torch-231-cudnn-8", None),
    ("CUDNN-9-WITH-TORCH-BEFORE-24", "torch-240-cudnn-9", None),
    ("CUDNN-9-WITH-TORCH-BEFORE-24", "torch-231cu118-cudnn-9", None),
    ("NCCL-TOO-OLD-FOR-TORCH-22", "torch-220cu118-nccl-218", None),  # CUDA 11 builds use nvidia-nccl-cu11
]

# Lines that look like each record's symptom but are not it: the record must not match them.
NEAR_MISSES = {
    "BITSANDBYTES-TRITON-OPS": ["ModuleNotFoundError: No module named 'triton'",
                                "from triton.ops.matmul_perf_model import early_config_prune"],
    "DEEPSPEED-TORCH-SIX": ["ModuleNotFoundError: No module named 'six'", "from torch import inf"],
    "TORCH-CPP-EXTENSION-PKG-RESOURCES": ["from pkg_resources import packaging  # type: ignore[attr-defined]",
                                          "DeprecationWarning: pkg_resources is deprecated as an API."],
    "TORCH-NUMPY-2": ["A module that was compiled using NumPy 2.0 can run in NumPy 1.x",
                      "UserWarning: Failed to initialize NumPy: No module named 'numpy'"],
    "PANDAS-NUMPY-2": ["ValueError: numpy.dtype size changed", "RuntimeWarning: numpy.dtype size changed, may indicate binary incompatibility. Expected 96, got 88"],
    "PYARROW-NUMPY-2": ["AttributeError: _ARRAY_API", "compiled using NumPy 2.x"],
    "NUMPY-PYTHON-312-SOURCE-BUILD": ["AttributeError: module 'pkgutil' has no attribute 'zipimporter'"],
    "SETUPTOOLS-71-OLD-PACKAGING": ["TypeError: canonicalize_version() missing 1 required positional argument: 'version'"],
    "TORCH-CPU-BUILD-WITH-GPU": ["Torch compiled with CUDA enabled: True", "AssertionError: Torch not compiled with ROCm enabled"],
    "TORCH-NO-KERNELS-FOR-HOPPER": ["NVIDIA A100-SXM4-80GB with CUDA capability sm_80 is not compatible with the current PyTorch installation.",
                                    "NVIDIA H100 80GB HBM3 with CUDA capability sm_90 is compatible"],
    "TORCH-NO-KERNELS-FOR-BLACKWELL": ["NVIDIA H100 80GB HBM3 with CUDA capability sm_90 is not compatible with the current PyTorch installation.",
                                       "The current PyTorch install supports CUDA capabilities sm_75 sm_80 sm_86 sm_90 sm_100 sm_120."],
    "BITSANDBYTES-NO-CUDA124-BINARY": ["Loading bitsandbytes native library from: /venv/bitsandbytes/libbitsandbytes_cuda124.so",
                                       "CUDA SETUP: Loading binary /venv/bitsandbytes/libbitsandbytes_cuda121.so..."],
    "BITSANDBYTES-NO-CUDA126-BINARY": ["Could not load the bitsandbytes CUDA library"],
    "BITSANDBYTES-NO-CUDA128-BINARY": ["CUDA SETUP: Required library version found: libbitsandbytes_cuda128.so"],
    "DEEPSPEED-NVCC-11-TORCH-CUDA-12": ["Installed CUDA version 11.5 does not match the version torch was compiled with 11.7 "
                                        "but since the APIs are compatible, accepting this combination"],
    "DEEPSPEED-NVCC-12-TORCH-CUDA-11": ["Installed CUDA version 12.1 matches the version torch was compiled with 12.1"],
    "DEEPSPEED-NVCC-13-TORCH-CUDA-12": ["Installed CUDA version 12.9 does not match the version torch was compiled with 12.8 "
                                        "but since the APIs are compatible, accepting this combination"],
    "TORCH-COMPILE-PYTHON-312": ["RuntimeError: Dynamo is not supported on Python 3.13+"],
    "TORCH-COMPILE-PYTHON-313": ["RuntimeError: Dynamo is not supported on Python 3.12+",
                                 "RuntimeError: torch.compile is not supported on Python 3.14+"],
    "TORCH-COMPILE-PRE-VOLTA": ["Triton only supports devices of CUDA Capability >= 7.0"],
    "FLASH-ATTN-BLACKWELL": ["FlashAttention only supports fp16 and bf16 data type",
                             "FlashAttention is only supported on CUDA 11.6 and above"],
    "NCCL-TOO-OLD-FOR-TORCH-22": ["undefined symbol: ncclCommInitRankConfig", "NCCL version 2.18.1+cuda12.1"],
    "OPENCV-NUMPY-2": ["A module that was compiled using NumPy 2.0 can run with NumPy 1.x too", "AttributeError: _ARRAY_API"],
    "OPENCV-HEADLESS-NUMPY-2": ["AttributeError: module 'cv2' has no attribute '_ARRAY_API_not_found'"],
    "BITSANDBYTES-WINDOWS-BEFORE-043": ["WARNING: The following directories listed in your path were found to be non-existent: {WindowsPath('D')}"],
    "DEEPSPEED-PYDANTIC-2": ["AttributeError: 'FieldInfo' object has no attribute 'alias_priority'"],
    "DEEPSPEED-NEEDS-PYDANTIC-2": ["from pydantic import model_validator"],
    "BITSANDBYTES-TOO-OLD-FOR-4BIT": ["You have a version of `bitsandbytes` that is not compatible with 8bit inference and training"],
    "NVJITLINK-OLDER-THAN-CUSPARSE-124": ["undefined symbol: __nvJitLinkAddData_12_1, version libnvJitLink.so.12"],
    "CUDNN-8-WITH-TORCH-24": ["Could not load library libcudnn_cnn_infer.so.8. Error: libnvrtc.so: cannot open shared object file"],
    "CUDNN-9-WITH-TORCH-BEFORE-24": ["Could not load library libcudnn_ops_infer.so.8. Error: libcublas.so.11: cannot open shared object file"],
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """name -> the JSON report of `envdoctor check -r` on that environment (run on first use)."""

    def spec_of(name):
        spec = ENVS[name]
        facts = ["%s=%s" % (key.replace("__", "."), value) for key, value in sorted(spec.facts.items())]
        return spec.pins, ["--python-version", spec.python] + fact_args(facts)

    return pin_reports(tmp_path_factory.mktemp("lower-pins"), spec_of, env={"PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("record_id,env_name,status", ROWS, ids=["%s@%s" % (r[0], r[1]) for r in ROWS])
def test_lower_record_fires_or_stays_quiet(reports, record_id, env_name, status):
    assert_row(reports(env_name), record_id, status, env_name)


def test_every_lower_record_has_rows_and_near_misses():
    """Each record of this module fires somewhere, stays quiet somewhere, and has near misses
    (rows of other records, e.g. a rival cause that must stay quiet, may appear as well)."""
    ids = {r[0] for r in ROWS if r[2]}
    assert ids == set(NEAR_MISSES)
    base = load([shipped_dir()])
    known = {r.id for r in base.records}
    assert {r[0] for r in ROWS} <= known, {r[0] for r in ROWS} - known
    for record_id in ids:
        assert any(r[0] == record_id and r[2] is None for r in ROWS), record_id


def test_near_misses_match_none_of_these_records(tmp_path):
    lines, owner = [], {}
    for record_id, misses in sorted(NEAR_MISSES.items()):
        lines += ["Traceback (most recent call last):", '  File "train.py", line 12, in <module>']
        for miss in misses:
            lines.append(miss)
            owner[len(lines)] = record_id
    log = tmp_path / "near.log"
    log.write_text("\n".join(lines) + "\n")
    done = envdoctor("explain", "--format", "json", "--log-only", str(log))
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    wrong = [(owner[line["line"]], line["text"]) for m in report["matches"] for line in m["lines"]
             if any(r["id"] == owner.get(line["line"]) for r in m["records"])]
    assert not wrong, wrong


NUMPY_2_LOG = [
    "Traceback (most recent call last):",
    '  File "/opt/venv/lib/python3.10/site-packages/xtuner/tools/train.py", line 12, in <module>',
    "    from mmengine.runner import Runner",
    '  File "/opt/venv/lib/python3.10/site-packages/mmengine/hooks/naive_visualization_hook.py", line 5, in <module>',
    "    import cv2",
    '  File "/opt/venv/lib/python3.10/site-packages/cv2/__init__.py", line 181, in <module>',
    "    bootstrap()",
    "A module that was compiled using NumPy 1.x cannot be run in",
    "NumPy 2.0.0 as it may crash. To support both 1.x and 2.x",
    "AttributeError: _ARRAY_API not found",
]


@pytest.mark.parametrize("pins,cause", [
    (("numpy==2.0.0", "opencv-python-headless==4.9.0.80", "torch==2.3.0+cu121", "pyarrow==16.0.0"), "OPENCV-HEADLESS-NUMPY-2"),
    (("numpy==2.0.0", "opencv-python-headless==4.10.0.84", "torch==2.2.2+cu121", "pyarrow==16.0.0"), "TORCH-NUMPY-2"),
])
def test_numpy_2_line_names_the_module_built_for_numpy_1(tmp_path, pins, cause):
    """One NumPy 2 message, four records that print it: the pins decide which one applies."""
    log = tmp_path / "numpy2.log"
    log.write_text("\n".join(NUMPY_2_LOG) + "\n")
    req = tmp_path / "req.txt"
    req.write_text("\n".join(pins) + "\n")
    done = envdoctor("explain", "--format", "json", str(log), "-r", str(req), "--python-version", "3.10", env={"PATH": "/usr/bin:/bin"})
    report = json.loads(done.stdout)
    assert done.returncode == 1, done.stderr
    first = report["matches"][0]
    statuses = {r["id"]: r["status"] for r in first["records"]}
    assert statuses[cause] == "confirmed", statuses
    assert [k for k, v in statuses.items() if v == "confirmed"] == [cause], statuses
    assert first["verdict"] == "applies" and cause in first["conclusion"]
