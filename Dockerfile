# An image of the official Valkey server with valkey-ratelimit loaded. The build stage runs
# `make build`, the same target as on a development machine, so the two cannot drift apart.
#
#   docker build -t valkey-ratelimit .
#   docker run --rm -p 6379:6379 valkey-ratelimit
#
# The server listens on every interface of the container without a password: put it behind
# your network policy, or add `--requirepass` or an ACL file to the command.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Makefile Cargo.toml Cargo.lock ./
COPY src ./src
COPY bench ./bench
COPY examples/rust ./examples/rust
RUN make build

FROM valkey/valkey:9.1
COPY --from=build /src/target/release/libvalkey_ratelimit.so /usr/lib/valkey/libvalkey_ratelimit.so
COPY valkey.conf.example /etc/valkey/valkey.conf
EXPOSE 6379
CMD ["valkey-server", "/etc/valkey/valkey.conf", "--loadmodule", "/usr/lib/valkey/libvalkey_ratelimit.so", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data"]
