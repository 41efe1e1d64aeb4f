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

# ---- build: compilers and -dev packages, none of which ship
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
      libopenblas-dev libmicrohttpd-dev libjansson-dev libcmocka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include include
COPY src src
COPY server server
COPY tools tools
COPY tests tests
# COFI_NATIVE=OFF: the image runs on whatever CPU the endpoint has, not
# the build machine's.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCOFI_NATIVE=OFF \
 && cmake --build build -j"$(nproc)" --target cofi \
 && strip build/cofi

# ---- run: the binary and its shared libraries only
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas0-pthread libgomp1 \
      libmicrohttpd12 libjansson4 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home cofi \
 && mkdir -p /opt/ml/model
COPY --from=build /src/build/cofi /usr/local/bin/cofi
USER cofi
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/cofi"]
CMD ["serve"]
