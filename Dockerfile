# cofi in a container, shaped for AWS SageMaker (see docs/serving.md).
#
#   docker build -t cofi .
#   docker run -p 8080:8080 -v "$PWD/model-dir:/opt/ml/model:ro" cofi serve
#
# SageMaker starts the container as `docker run IMAGE serve`: the entry
# point is cofi, so that runs `cofi serve` with no model argument, which
# loads /opt/ml/model/model.cofi (or $SM_MODEL_DIR/model.cofi) and listens
# on 0.0.0.0:8080 (or $SAGEMAKER_BIND_TO_PORT). Any other cofi command works
# too: `docker run IMAGE train ...`, `docker run IMAGE info /opt/ml/model/model.cofi`.
#
# The test suite reproduces the build stage from this file itself
# (tests/e2e/docker_build.sh parses it): keep each step a plain
# WORKDIR/COPY/RUN, with paths relative to the WORKDIR.

# ---- build: compilers and -dev packages, none of which ship
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
      libopenblas-dev libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt LICENSE README.md CHANGELOG.md ./
COPY cmake cmake
COPY include include
COPY src src
COPY server server
COPY tools tools
COPY scripts/gen-man.sh scripts/gen-man.sh
COPY docs docs
# COFI_NATIVE=OFF: the image runs on whatever CPU the endpoint has, not the
# build machine's (the kernels are chosen at run time). No tests, fuzz
# harnesses or benchmarks: the image needs neither cmocka nor their sources.
# No MPI (COFI_MPI=OFF): the image serves; `mpirun cofi train` (docs/mpi.md)
# runs where Open MPI is, and the image needs no libmpi whatever the build
# host has installed.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCOFI_NATIVE=OFF \
      -DCOFI_BUILD_TESTS=OFF -DCOFI_BUILD_FUZZ=OFF -DCOFI_BUILD_BENCH=OFF -DCOFI_MPI=OFF \
 && cmake --build build -j"$(nproc)" \
 && DESTDIR="$PWD/stage" cmake --install build --prefix /usr/local --strip

# ---- run: the binary, the library and their shared libraries only
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas0-pthread libgomp1 \
      libmicrohttpd12 libjansson4 libsqlite3-0 libpq5 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home cofi \
 && mkdir -p /opt/ml/model
COPY --from=build /src/stage/usr/local/bin/cofi /usr/local/bin/cofi
COPY --from=build /src/stage/usr/local/share/man/man1/cofi.1 /usr/local/share/man/man1/cofi.1
USER cofi
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/cofi"]
CMD ["serve"]
