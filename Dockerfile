# syntax=docker/dockerfile:1

# Build: compile TypeScript to dist/ with the full (dev) dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# The npm workspace (the TypeScript client) is part of the lockfile: npm ci needs its package.json.
COPY package.json package-lock.json ./
COPY clients/typescript/package.json ./clients/typescript/
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY routes ./routes
RUN npm run build

# Runtime: production dependencies and the compiled server only.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
# OpenBLAS (with LAPACK) for the native kernel backend, which BLAS=auto picks when it loads
# (without it the JavaScript kernels run). koffi, an npm dependency, calls it: no compiler needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libopenblas0-pthread \
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY clients/typescript/package.json ./clients/typescript/
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
# The playground page's static files, read by dist/src/explain/playground.js from here.
COPY src/explain/playground ./src/explain/playground
COPY openapi.yaml ./
# The image's unprivileged user (uid 1000); the files stay root-owned and read-only to it.
USER node
EXPOSE 3000
# No curl in the slim image: Node's own fetch asks /healthz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1 and handles SIGTERM itself (graceful shutdown within SHUTDOWN_GRACE_MS).
CMD ["node", "dist/src/server.js"]
