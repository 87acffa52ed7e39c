"""Where the C++ SDK shipped inside this package is, like torch.utils.cmake_prefix_path:

    python -m lomit_fast.cpp --cmake-prefix  # for CMAKE_PREFIX_PATH: find_package(lomit_fast)
    python -m lomit_fast.cpp --ops-library   # liblomit_ops.so: torch.ops.load_library, a linker
    python -m lomit_fast.cpp --include       # the folder of <lomit_fast/engine/translator.h>

The package folder is laid out as an installed prefix (setup.py builds it; `make sdk PREFIX=<dir>`
installs the same files elsewhere): lib/liblomit_ops.so (the ops lomit::instance_norm / lomit::hain
that exported .pt/.pt2 files call), lib/liblomit_engine.so (lomit::engine::Translator),
include/lomit_fast/engine/translator.h and lib/cmake/lomit_fast (the imported targets
lomit_fast::ops and lomit_fast::engine). lomit_fast._C links the same two libraries, so loading
liblomit_ops.so again (torch.ops.load_library) in a process that uses lomit_fast is harmless.
"""
import argparse
import sys
from pathlib import Path

PREFIX = Path(__file__).resolve().parent


def _built(path: Path) -> str:
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the C++ libraries of lomit_fast are not built; reinstall with "
            "`pip install --no-build-isolation --no-deps -e .` and a C++ compiler (see README)")
    return str(path)


def ops_library() -> str:
    """Path of liblomit_ops.so; torch.ops.load_library(ops_library()) registers the lomit:: ops."""
    return _built(PREFIX / "lib" / "liblomit_ops.so")


def engine_library() -> str:
    """Path of liblomit_engine.so, the C++ engine (lomit::engine::Translator)."""
    return _built(PREFIX / "lib" / "liblomit_engine.so")


def include_dir() -> str:
    """The folder to put on the include path for <lomit_fast/engine/translator.h>."""
    _built(PREFIX / "include" / "lomit_fast" / "engine" / "translator.h")
    return str(PREFIX / "include")


def cmake_prefix_path() -> str:
    """The prefix that holds lib/cmake/lomit_fast/lomit_fastConfig.cmake."""
    _built(PREFIX / "lib" / "cmake" / "lomit_fast" / "lomit_fastConfig.cmake")
    ops_library(), engine_library()
    return str(PREFIX)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lomit_fast.cpp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--cmake-prefix", action="store_const", const=cmake_prefix_path,
                       dest="find", help="the prefix for CMAKE_PREFIX_PATH")
    which.add_argument("--ops-library", action="store_const", const=ops_library, dest="find",
                       help="the path of liblomit_ops.so")
    which.add_argument("--engine-library", action="store_const", const=engine_library,
                       dest="find", help="the path of liblomit_engine.so")
    which.add_argument("--include", action="store_const", const=include_dir, dest="find",
                       help="the include folder")
    args = parser.parse_args(argv)
    try:
        print(args.find())
    except FileNotFoundError as e:
        print(f"python -m lomit_fast.cpp: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
