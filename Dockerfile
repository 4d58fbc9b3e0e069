# syntax=docker/dockerfile:1
#
# dynacache: one image for both process roles.
#   API (default):  docker run dynacache                              -> node dist/api/server.js
#   worker:         docker run dynacache node dist/workers/main.js
# Configuration comes from the environment only (see src/shared/config.ts); nothing is baked in.
#
# The HEALTHCHECK below probes the API's /health. It means nothing for a worker (no HTTP listener):
# a worker container must override it (docker-compose.yml sets `healthcheck: { disable: true }`
# on the worker service; with `docker run`, pass --no-healthcheck).

# ---- build: full dependency tree, compile TypeScript to dist/ ----
# Node 24, the current LTS (Node 20 reached its end of life in April 2026). The major tag follows its
# patch and security releases; CI runs the suite on Node 24 as well as on the development machines' 20.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the project's postinstall (`tap build`) and native add-on scripts are not needed
# to compile; the TypeScript 7 compiler comes as a prebuilt platform package, not from a script.
# `npm install` honours the lockfile; `npm ci` refuses it because the registry the lockfile was made
# against lacks other platforms' optional packages (biome, msgpackr-extract), so it cannot list them.
RUN npm install --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The web console (Vite + Preact), built into dist/console beside the compiled API.
COPY console ./console
RUN npm run build

# ---- runtime: production dependencies and the compiled output only ----
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# package.json is also needed at run time: it declares "type": "module" for dist/*.js.
COPY package.json package-lock.json ./
# `npm ci`: exactly the lockfile (test/deploy/node-runtime.test.ts runs this very command under Node 24).
# --ignore-scripts is required: the postinstall runs `tap`, a dev tool that --omit=dev leaves out.
# No production dependency needs an install script (optional native accelerators such as
# msgpackr-extract ship prebuilt packages or fall back to JavaScript).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# Local export files (EXPORT_STORAGE=local). Created here, owned by the runtime user, so a named
# volume mounted on it starts with the right owner (docker-compose.yml shares it between api and workers).
RUN mkdir -p /data/exports && chown -R node:node /data
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/api/server.js"]
