# otpd container image (docs/deployment.md).
#   docker build -t otpd .
#   docker run -p 8080:8080 -e OTPD_SECRET="$(openssl rand -base64 32)" -v otpd-data:/data otpd

# --- build: compile TypeScript and the better-sqlite3 addon, then drop development dependencies -------
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles its native addon with node-gyp when no prebuilt binary fits this platform.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# --- run: the compiled server, production dependencies only, as an unprivileged user ------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    OTPD_HOST=0.0.0.0 \
    OTPD_PORT=8080 \
    OTPD_DATABASE=/data/otpd.db \
    OTPD_LOG_LEVEL=info
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# /data holds the SQLite database (unused with OTPD_REDIS_URL); it belongs to the `node` user (uid 1000).
RUN mkdir -p /data && chown node:node /data && chmod 700 /data
USER node
VOLUME /data
EXPOSE 8080
# Node's own fetch: the slim image has no curl. Exit 0 only for a 200 from /healthz (the store answers).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.OTPD_PORT || 8080) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli/index.js"]
CMD ["serve"]
