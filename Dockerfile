# skybroker image for docker-compose deployments (API and ingest services).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md config.yaml ./
COPY broker ./broker
COPY handlers ./handlers
COPY models ./models
COPY facility_apis ./facility_apis
RUN pip install --no-cache-dir -e .
ENV SKYBROKER_CONFIG=/app/config.yaml
EXPOSE 5000
CMD ["skybroker", "serve"]
