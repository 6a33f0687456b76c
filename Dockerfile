# Builds the module with the same steps as `make build` and adds it to the official Valkey
# image. Docker cannot run on the machines this is developed on; keep the steps in line with
# the Makefile.
FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY bench ./bench
RUN cargo build --release --lib --locked

FROM valkey/valkey:9.1
COPY --from=build /src/target/release/libvalkey_ratelimit.so /usr/lib/valkey/libvalkey_ratelimit.so
COPY valkey.conf.example /etc/valkey/valkey.conf
CMD ["valkey-server", "/etc/valkey/valkey.conf", "--loadmodule", "/usr/lib/valkey/libvalkey_ratelimit.so", "--bind", "0.0.0.0", "--protected-mode", "no"]
