FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY edc edc
COPY trials trials
COPY subjects subjects
COPY visits visits
COPY adverse_events adverse_events
COPY data_management data_management
COPY exports exports
COPY seeds seeds
COPY manage.py ./
RUN pip install --no-cache-dir . && python manage.py collectstatic --no-input -v0 \
    && useradd --system --uid 1000 trialdesk && mkdir -p /app/var && chown trialdesk /app/var
USER trialdesk
EXPOSE 8000
CMD ["gunicorn", "edc.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
