# LaventeCare Auth in a container, against an external PostgreSQL (DATABASE_URL and
# DATABASE_RUNTIME_URL; README, "An external PostgreSQL"). compose.yaml runs it with one.
# tests/it/container.rs reads this file and checks it: the build command is the one the test
# suite builds its release binary with, the runtime image provides every library that binary
# links, and the binary started the way ENTRYPOINT, CMD, ENV and USER say serves.

# --- build: the release binary, with the same toolchain family as the README's ---
FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin laventecare-auth

# --- runtime: Debian slim (the same Debian as the build image, so the same glibc) ---
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/laventecare --create-home lca
COPY --from=build /src/target/release/laventecare-auth /usr/local/bin/laventecare-auth
# The data directory holds the generated master key when LCA_MASTER_KEY is not set: mount a
# volume there, or set LCA_MASTER_KEY (the same on every instance).
ENV LCA_LISTEN=0.0.0.0:8080 \
    LCA_DATA_DIR=/var/lib/laventecare
VOLUME /var/lib/laventecare
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/laventecare-auth"]
CMD ["serve"]
