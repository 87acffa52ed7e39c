# The lomit_fast CMake package, installed by `make sdk PREFIX=<dir>` (<dir>/lib/cmake/lomit_fast)
# and shipped inside the Python package (`python -m lomit_fast.cpp --cmake-prefix`). Use it with
# that prefix and torch's CMake folder in CMAKE_PREFIX_PATH:
#   find_package(lomit_fast CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE lomit_fast::engine)  # #include <lomit_fast/engine/translator.h>
# Targets:
#   lomit_fast::ops     liblomit_ops.so: the ops lomit::instance_norm / lomit::hain that exported
#                       .pt/.pt2 files call, for programs that run torch::jit::load themselves.
#                       Carries torch and -Wl,--no-as-needed (no symbol of it is referenced;
#                       without the flag the linker drops it and loading fails, "Unknown builtin op")
#   lomit_fast::engine  liblomit_engine.so: lomit::engine::Translator; brings lomit_fast::ops
include(CMakeFindDependencyMacro)
find_dependency(Torch)

get_filename_component(_lomit_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
foreach(_lomit_lib ops engine)
  if(NOT EXISTS "${_lomit_prefix}/lib/liblomit_${_lomit_lib}.so")
    set(lomit_fast_FOUND FALSE)
    set(lomit_fast_NOT_FOUND_MESSAGE "${_lomit_prefix}/lib/liblomit_${_lomit_lib}.so is missing")
    return()
  endif()
endforeach()

if(NOT TARGET lomit_fast::ops)
  add_library(lomit_fast::ops SHARED IMPORTED)
  set_target_properties(lomit_fast::ops PROPERTIES
    IMPORTED_LOCATION "${_lomit_prefix}/lib/liblomit_ops.so"
    IMPORTED_SONAME "liblomit_ops.so"
    INTERFACE_LINK_LIBRARIES "${TORCH_LIBRARIES}"
    INTERFACE_LINK_OPTIONS "LINKER:--no-as-needed")
  add_library(lomit_fast::engine SHARED IMPORTED)
  set_target_properties(lomit_fast::engine PROPERTIES
    IMPORTED_LOCATION "${_lomit_prefix}/lib/liblomit_engine.so"
    IMPORTED_SONAME "liblomit_engine.so"
    INTERFACE_INCLUDE_DIRECTORIES "${_lomit_prefix}/include"
    INTERFACE_LINK_LIBRARIES "lomit_fast::ops;${TORCH_LIBRARIES}")
endif()
unset(_lomit_prefix)
unset(_lomit_lib)
