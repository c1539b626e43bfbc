# One image for every process of the service (see anvil-compose.yml).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends make nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY pyproject.toml README.md ./
COPY wallet wallet
COPY chains chains
COPY custody custody
COPY fiat fiat
RUN pip install --no-cache-dir .
ENV PATH="/app/node_modules/.bin:${PATH}"
ENTRYPOINT ["wallet"]
