"""Builds the cofi Python package: CMake builds libcofi.a (the library's own
flags, per-ISA kernel files included) from the repository this directory
belongs to, and the extension cofi._cofi links it statically with OpenBLAS
and OpenMP. Needs only Debian packages (python3-dev, python3-numpy,
python3-setuptools, cmake, libopenblas-dev):

    python3 -m pip install --no-build-isolation --no-index ./python

COFI_SOURCE_DIR overrides where the C sources are (default: ..);
COFI_CMAKE_ARGS adds CMake arguments (e.g. -DCOFI_NATIVE=OFF for a
portable build).
"""
import os
import shlex
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.environ.get("COFI_SOURCE_DIR", os.path.join(HERE, "..")))


class CMakeBuildExt(build_ext):
    """Configure + build the cofi_lib target, then link the extension to it."""

    def build_extension(self, ext):
        import numpy

        if not os.path.exists(os.path.join(ROOT, "include", "cofi.h")):
            raise RuntimeError(f"the cofi C sources are not at {ROOT} (set COFI_SOURCE_DIR)")
        build_dir = os.path.join(os.path.abspath(self.build_temp), "cofi-cmake")
        os.makedirs(build_dir, exist_ok=True)
        cmake_args = [
            "-DCMAKE_BUILD_TYPE=Release",
            "-DCOFI_BUILD_TESTS=OFF",
            "-DCOFI_BUILD_FUZZ=OFF",
            "-DCOFI_BUILD_MAN=OFF",
            "-DCOFI_BUILD_BENCH=OFF",
        ] + shlex.split(os.environ.get("COFI_CMAKE_ARGS", ""))
        subprocess.check_call(["cmake", "-S", ROOT, "-B", build_dir] + cmake_args)
        jobs = str(os.cpu_count() or 1)
        subprocess.check_call(
            ["cmake", "--build", build_dir, "--target", "cofi_lib", "-j", jobs])
        lib = os.path.join(build_dir, "libcofi.a")
        if not os.path.exists(lib):
            raise RuntimeError(f"CMake did not produce {lib}")
        ext.include_dirs += [os.path.join(ROOT, "include"),
                             os.path.join(build_dir, "include"), numpy.get_include()]
        ext.extra_objects = [lib]
        try:  # Debian's OpenBLAS lives in an alternatives directory
            libs = subprocess.check_output(["pkg-config", "--libs", "openblas"], text=True)
            ext.extra_link_args += shlex.split(libs)
        except (OSError, subprocess.CalledProcessError):
            pass
        ext.depends = [lib]
        super().build_extension(ext)


ext = Extension(
    "cofi._cofi",
    sources=["src/_cofi.c"],
    libraries=["openblas", "m"],
    extra_compile_args=["-std=c11", "-O2", "-fopenmp", "-Wall", "-Wextra", "-Werror",
                        "-Wshadow", "-Wstrict-prototypes", "-Wvla", "-Wno-unused-parameter"],
    extra_link_args=["-fopenmp"],
)

setup(
    name="cofi",
    version="0.2.0",
    description="cofi: implicit-feedback ALS recommender (C library) with an implicit-compatible API",
    packages=["cofi"],
    ext_modules=[ext],
    cmdclass={"build_ext": CMakeBuildExt},
    python_requires=">=3.9",
    install_requires=["numpy", "scipy"],
    zip_safe=False,
)
