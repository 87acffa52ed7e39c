"""Build lomit_fast: the Python package, kernels/ as lomit_fast.kernels, and the C++ extension
lomit_fast._C from csrc/ (CPU always; CUDA sources too when a CUDA torch and toolkit are present).

The extension is optional: without a compiler or torch at build time (or with LOMIT_BUILD_EXT=0)
the package still installs and falls back to the reference ops.
"""
import glob
import os
import sys

from setuptools import find_packages, setup


def package_version() -> str:
    """lomit_fast/version.py, the one place the version is written."""
    scope: dict = {}
    exec(open(os.path.join("lomit_fast", "version.py")).read(), scope)
    return scope["__version__"]


def extension_modules():
    if os.environ.get("LOMIT_BUILD_EXT") == "0":
        return [], {}
    try:
        import torch
        from torch.utils import cpp_extension
    except ImportError:
        print("lomit_fast: torch not importable at build time, skipping lomit_fast._C",
              file=sys.stderr)
        return [], {}
    sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/ops/*.cpp")
                     + glob.glob("csrc/ops/cpu/*.cpp") + glob.glob("csrc/engine/*.cpp"))
    cuda_sources = sorted(glob.glob("csrc/ops/cuda/*.cu"))
    use_cuda = (bool(cuda_sources) and torch.version.cuda is not None
                and cpp_extension.CUDA_HOME is not None and os.environ.get("LOMIT_NO_CUDA") != "1")
    # The extension is built where it runs (pip install -e . in the README commands), so the
    # CPU kernels may use that CPU's vector units; LOMIT_PORTABLE=1 builds for any x86-64.
    native = [] if os.environ.get("LOMIT_PORTABLE") == "1" else ["-march=native"]
    # -fopenmp: at::parallel_for is inline OpenMP in ATen's headers; without it the CPU kernels
    # run on one thread (the libgomp torch ships is the one loaded at run time).
    # -ffp-contract=off: no fused multiply-adds behind our back; the backward kernels rely on
    # g_hat - mean(g_hat) being exactly 0 on one-pixel planes.
    args = {"cxx": ["-O3", "-fopenmp", "-ffp-contract=off", *native]}
    common = dict(extra_compile_args=args, extra_link_args=["-fopenmp"],
                  include_dirs=[os.path.abspath("csrc")],
                  define_macros=[("LOMIT_VERSION", f'"{package_version()}"')])
    if use_cuda:
        args["nvcc"] = ["-O3", "--fmad=false"]  # IEEE division/sqrt, no contracted FMAs
        ext = cpp_extension.CUDAExtension("lomit_fast._C", sources + cuda_sources,
                                          **common)
        ext.define_macros.append(("WITH_CUDA", None))
    else:
        ext = cpp_extension.CppExtension("lomit_fast._C", sources, **common)
    return [ext], {"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = extension_modules()
setup(
    packages=find_packages(include=["lomit_fast", "lomit_fast.*"]) + ["lomit_fast.kernels"],
    package_dir={"lomit_fast.kernels": "kernels"},
    package_data={"lomit_fast": ["assets/*.safetensors"],
                  "lomit_fast.engine": ["static/*.html", "static/*.js"]},  # the serve page
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
