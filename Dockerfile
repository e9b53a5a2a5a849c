FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY edc edc
COPY accounts accounts
COPY trials trials
COPY subjects subjects
COPY visits visits
COPY epro epro
COPY notifications notifications
COPY adverse_events adverse_events
COPY data_management data_management
COPY exports exports
COPY seeds seeds
COPY locale locale
COPY manage.py ./
# PIP_EXTRAS="[s3]" for source documents on S3-compatible storage (brings boto3)
ARG PIP_EXTRAS=""
# PYTHONDONTWRITEBYTECODE: processes never write .pyc, so the image compiles the app's bytecode
# once (compileall); otherwise every process (migrate, each web and worker) compiled its ~250
# modules at start, about 0.75 s of CPU each (#19).
# gettext's msgfmt compiles the translations (locale/*.po -> .mo), then leaves the image;
# Pango and a font stay: WeasyPrint lays out the casebook PDFs with them
RUN apt-get update && apt-get install -y --no-install-recommends gettext \
    libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && pip install --no-cache-dir ".${PIP_EXTRAS}" && python manage.py collectstatic --no-input -v0 \
    && python manage.py compilemessages -v0 \
    && python -m compileall -q /app \
    && apt-get purge -y gettext && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 1000 trialdesk && mkdir -p /app/var && chown trialdesk /app/var
USER trialdesk
EXPOSE 8000
CMD ["gunicorn", "edc.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
