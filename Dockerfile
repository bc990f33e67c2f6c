# twill image: the node agent (twilld, Node.js) and the self-contained CNI executable
# (/opt/twill/bin/twill, which the DaemonSet's init container copies to the host's /opt/cni/bin).
#
#   docker build -t ghcr.io/twill-net/twill:0.1.0 .
#
# Stages: build (all dependencies, tsc + bun --compile) → prod-deps (runtime node_modules only)
# → runtime (slim Node LTS + nftables/iptables/iproute2, no compiler, no dev dependencies).
#
# The base image is a build argument so hosts that cannot pull it can supply their own: any Debian
# bookworm image with Node >= 20 and npm on PATH and apt working (test/cluster/images.sh builds one
# with debootstrap and buildah for the real-cluster suite, which has no registry):
#
#   buildah bud --build-arg NODE_IMAGE=localhost/node:20-bookworm -t ghcr.io/twill-net/twill:test .
ARG NODE_IMAGE=node:22-bookworm-slim

# ---- build: compile the agent to dist/ and the CNI plugin to dist/cni/twill
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY agent ./agent
COPY cni ./cni
COPY lib ./lib
COPY scripts ./scripts
RUN npm run build && test -x dist/cni/twill && test -f dist/agent/main.js

# ---- prod-deps: runtime dependencies only (koffi's native module, pino, prom-client, client-node; etcd is spoken to over gRPC on node:http2, no client library)
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime
FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables iptables iproute2 tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /src/dist/agent ./dist/agent
COPY --from=build /src/dist/lib ./dist/lib
# --chmod in COPY, not a later `RUN chmod`: that would copy the ~100 MB CNI executable into a second layer.
COPY --chmod=0755 bin/twilld.js ./bin/twilld.js
COPY --chmod=0755 --from=build /src/dist/cni/twill /opt/twill/bin/twill
RUN ln -s /app/bin/twilld.js /usr/local/bin/twilld \
 && twilld --version && /opt/twill/bin/twill --version
ENTRYPOINT ["/usr/bin/tini", "--", "twilld"]
