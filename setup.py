"""Build lomit_fast: the Python package, kernels/ as lomit_fast.kernels, and the C++ extension
lomit_fast._C from csrc/ (CPU always; CUDA sources too when a CUDA torch and toolkit are present).

The C++ side is two plain shared libraries, lomit_fast/lib/liblomit_ops.so (the lomit:: ops) and
lomit_fast/lib/liblomit_engine.so (the engine), which C++ programs link too, and the Python
binding lomit_fast._C linked against both. With the header and the CMake package files copied
beside them, the package folder is a C++ SDK prefix (lomit_fast/cpp.py finds it).

The extension is optional: without a compiler or torch at build time (or with LOMIT_BUILD_EXT=0)
the package still installs and falls back to the reference ops. It builds against the installed
torch==2.13.0 (pinned in pyproject.toml and requirements.txt; never an open range).
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
    ops_sources = sorted(glob.glob("csrc/ops/*.cpp") + glob.glob("csrc/ops/cpu/*.cpp"))
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
    make = cpp_extension.CUDAExtension if use_cuda else cpp_extension.CppExtension

    def library(name, sources):  # a plain C++ library: no libtorch_python, a soname
        ext = make(f"lomit_fast.lib.{name}", sources, **common)
        ext.libraries = [lib for lib in ext.libraries if lib != "torch_python"]
        ext.extra_link_args = [*ext.extra_link_args, f"-Wl,-soname,{name}.so"]
        return ext

    exts = [library("liblomit_ops", ops_sources + (cuda_sources if use_cuda else [])),
            library("liblomit_engine", sorted(glob.glob("csrc/engine/*.cpp"))),
            make("lomit_fast._C", sorted(glob.glob("csrc/*.cpp")), **common)]
    if use_cuda:
        for ext in exts[0], exts[2]:  # the CUDA kernels; _C's built_with_cuda()
            ext.define_macros = [*ext.define_macros, ("WITH_CUDA", None)]
    build_ext = sdk_build_ext(cpp_extension.BuildExtension).with_options(use_ninja=True)
    return exts, {"build_ext": build_ext}


def sdk_build_ext(base):
    """build_ext that names the libraries lib/liblomit_*.so (no Python ABI tag), links
    lomit_fast._C against them (--no-as-needed: it calls no op by name; RUNPATH $ORIGIN/lib) and
    copies the header and the CMake package (csrc/cmake) beside them."""
    class BuildSDK(base):
        def get_ext_filename(self, fullname):
            *package, name = fullname.split(".")
            if name.startswith("liblomit_"):
                return os.path.join(*package, name + ".so")
            return super().get_ext_filename(fullname)

        def build_extension(self, ext):
            if ext.name == "lomit_fast._C":
                lib = os.path.dirname(self.get_ext_fullpath("lomit_fast.lib.liblomit_ops"))
                ext.extra_link_args = [*ext.extra_link_args, f"-L{lib}", "-Wl,--no-as-needed",
                                       "-llomit_ops", "-llomit_engine", "-Wl,-rpath,$ORIGIN/lib"]
            super().build_extension(ext)

        def run(self):
            prefixes = [os.path.join(self.build_lib, "lomit_fast")]
            if self.inplace:  # pip install -e: setuptools copies the libraries into the sources
                build_py = self.get_finalized_command("build_py")
                prefixes.append(build_py.get_package_dir("lomit_fast"))
                os.makedirs(os.path.join(prefixes[-1], "lib"), exist_ok=True)
            super().run()
            with open("csrc/cmake/lomit_fastConfigVersion.cmake.in") as f:
                version = f.read().replace("@PROJECT_VERSION@", package_version())
            for prefix in prefixes:
                cmake = os.path.join(prefix, "lib", "cmake", "lomit_fast")
                include = os.path.join(prefix, "include", "lomit_fast", "engine")
                for folder in cmake, include:
                    os.makedirs(folder, exist_ok=True)
                self.copy_file("csrc/engine/translator.h", include)
                self.copy_file("csrc/cmake/lomit_fastConfig.cmake", cmake)
                with open(os.path.join(cmake, "lomit_fastConfigVersion.cmake"), "w") as f:
                    f.write(version)
    return BuildSDK


ext_modules, cmdclass = extension_modules()
setup(
    packages=find_packages(include=["lomit_fast", "lomit_fast.*"]) + ["lomit_fast.kernels"],
    package_dir={"lomit_fast.kernels": "kernels"},
    package_data={"lomit_fast": ["assets/*.safetensors"],
                  "lomit_fast.engine": ["static/*.html", "static/*.js"]},  # the serve page
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
