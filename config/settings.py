"""One settings module for every way PartyHub runs; production differs only by environment.

With nothing set, PartyHub runs embedded: SQLite, an in-memory channel layer, a render worker
inside the server process and the bundled offline model on the CPU. DATABASE_URL, REDIS_URL and
PARTYHUB_DEVICE switch to PostgreSQL, Redis + Celery workers and a GPU.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_float, env_int, env_list, env_origin, env_str
from config.secret import local_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PARTYHUB_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", LOCAL_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Served over HTTPS (PARTYHUB_HTTPS=1; Daphne's --proxy-headers takes the scheme from the proxy's
# X-Forwarded-Proto): plain HTTP is redirected, cookies travel over HTTPS only, and browsers are
# told to use nothing else for a year, subdomains included (HSTS). `manage.py check --deploy
# --fail-level WARNING` passes with it. Off by default: `make run` and the tests speak plain HTTP.
HTTPS = env_bool("PARTYHUB_HTTPS", False)
SECURE_SSL_REDIRECT = SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = HTTPS

# Served to other machines (a host beyond this one in ALLOWED_HOSTS, or HTTPS) PartyHub needs a
# secret key from its operator, the same in every process. On this machine alone (`make run`,
# `manage.py createsuperuser`, ...) it uses a key of its own, generated once into var/.
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and (HTTPS or set(ALLOWED_HOSTS) - set(LOCAL_HOSTS)):
        raise ImproperlyConfigured(
            "Set SECRET_KEY in the environment: PartyHub is served to other machines "
            "(ALLOWED_HOSTS or PARTYHUB_HTTPS), and every process must sign with one key."
        )
    SECRET_KEY = local_secret_key(VAR_DIR / "secret_key")

INSTALLED_APPS = [
    # First, so that its `runserver` wins: Daphne's (ASGI, WebSockets), warming the embedded
    # worker's model as the server starts.
    "partyhub",
    "daphne",  # before staticfiles, whose own runserver would serve WSGI only
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "generation",
    "streams",
    "accounts",
]

MIDDLEWARE = [
    # Outermost, so that it sees what every other layer answers.
    "core.middleware.JsonErrorsForApi",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # a fresh checkout has no var/ yet
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "partyhub.sqlite3",
            "OPTIONS": {
                # The server and the embedded worker thread write at the same time: take the
                # write lock as a transaction starts (no upgrade deadlocks); WAL keeps reads going.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def redis_channel_layer(url):
    # The pub/sub layer sends a group message once to each server process, which hands it to
    # its own members; the core layer stores a copy per member in Redis and each is fetched on
    # its own. For a stream watched by hundreds that costs a server process 357 µs of CPU per
    # frame delivered instead of 223 (bench/stream_fanout.py, docs/performance.md).
    # redis-py 8 caps a pool at 100 connections and then raises instead of waiting: a crowd of
    # viewers arriving at once (each joining a group) needs more.
    host = {"address": url, "socket_timeout": 15, "max_connections": 1000}
    return {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [host]},
    }


REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL)}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Rate-limit counters (core/limits.py): in Redis when there is one, so that every server
# process counts together; else in this one process's memory.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_URL = env_str("MEDIA_URL", "/media/")
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Django serves MEDIA_ROOT itself for `make run`; in production a web server or S3 does it.
PARTYHUB_SERVE_MEDIA = env_bool("PARTYHUB_SERVE_MEDIA", DEBUG)

# Where people reach this server (https://party.example.org), for the absolute links PartyHub
# hands out: the stage's join QR code and the `url` of a new party. Unset, each request's own
# scheme and Host are used, which a proxy that rewrites Host, or a laptop opened at 127.0.0.1
# while phones use its Wi-Fi address, gets wrong.
PARTYHUB_PUBLIC_URL = env_origin("PARTYHUB_PUBLIC_URL")

LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# Django's standard four: sign-up (UserCreationForm), `createsuperuser`, the admin's password
# forms and password changes all refuse a password like the username, under 8 characters, on
# the list of 20,000 common ones, or all digits, and say why.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

# A connected client is brought up to date from the archive this often, so an event the channel
# layer dropped (it delivers at most once) arrives within this many seconds even if none follows.
PARTYHUB_RESYNC_SECONDS = env_int("PARTYHUB_RESYNC_SECONDS", 10, minimum=1)
# A WebSocket client with this much unread is sent nothing more until it has read it; then it is
# caught up from the archive (core/backpressure.py). The most a stalled client costs.
PARTYHUB_WS_SEND_BUFFER_BYTES = env_int("PARTYHUB_WS_SEND_BUFFER_BYTES", 512 * 1024, minimum=1024)
# What one WebSocket connection may send: messages and bytes a second, each with a burst (a token
# bucket: core/inbound.py). Past either, a message is refused with `rate_limited`, so one
# member's flood costs the server little and delays nobody else. The byte burst holds at least
# one message of the protocol's 64 KiB.
PARTYHUB_WS_MESSAGES_PER_SECOND = env_int("PARTYHUB_WS_MESSAGES_PER_SECOND", 10, minimum=1)
PARTYHUB_WS_MESSAGE_BURST = env_int("PARTYHUB_WS_MESSAGE_BURST", 30, minimum=1)
PARTYHUB_WS_BYTES_PER_SECOND = env_int("PARTYHUB_WS_BYTES_PER_SECOND", 64 * 1024, minimum=1024)
PARTYHUB_WS_BYTE_BURST = env_int("PARTYHUB_WS_BYTE_BURST", 256 * 1024, minimum=64 * 1024)
# A connection whose messages wait unhandled past this many bytes is not read from until its
# consumer has caught up: what it sends meanwhile waits in the client's own TCP buffers
# (core/backpressure.py), so a flood cannot make the server buffer without bound.
PARTYHUB_WS_RECEIVE_BUFFER_BYTES = env_int(
    "PARTYHUB_WS_RECEIVE_BUFFER_BYTES", 256 * 1024, minimum=64 * 1024
)

# Rate limits for parties (429 / an error frame `rate_limited` with `retry_after` beyond): renders
# one browser session may ask for per minute, over all its parties; parties one address may start
# per hour; images one address may upload per minute; chat lines and comments one browser session
# may post per minute.
PARTYHUB_PARTY_RENDERS_PER_MINUTE = env_int("PARTYHUB_PARTY_RENDERS_PER_MINUTE", 12, minimum=1)
PARTYHUB_PARTY_MESSAGES_PER_MINUTE = env_int("PARTYHUB_PARTY_MESSAGES_PER_MINUTE", 20, minimum=1)
PARTYHUB_NEW_PARTIES_PER_HOUR = env_int("PARTYHUB_NEW_PARTIES_PER_HOUR", 30, minimum=1)
PARTYHUB_UPLOADS_PER_MINUTE = env_int("PARTYHUB_UPLOADS_PER_MINUTE", 30, minimum=1)
# Prompts one signed-in user may submit to streams per minute (429 rate_limited beyond).
PARTYHUB_STREAM_SUBMISSIONS_PER_MINUTE = env_int(
    "PARTYHUB_STREAM_SUBMISSIONS_PER_MINUTE", 6, minimum=1
)

# The streams' autopilot: prompts of its own when nobody submits (see streams/autopilot.py).
PARTYHUB_AUTOPILOT = env_bool("PARTYHUB_AUTOPILOT", True)

# --- Generation ------------------------------------------------------------------------------

PARTYHUB_DEVICE = env_choice("PARTYHUB_DEVICE", ["cpu", "cuda", "mps"], "cpu")
PARTYHUB_DTYPE = env_choice(
    "PARTYHUB_DTYPE",
    ["float32", "float16", "bfloat16"],
    "float32" if PARTYHUB_DEVICE == "cpu" else "float16",
)
PARTYHUB_DEFAULT_MODEL = env_str(
    "PARTYHUB_DEFAULT_MODEL", "offline" if PARTYHUB_DEVICE == "cpu" else "sd-turbo"
)
# A preset whose folder exists here (e.g. var/models/sd-turbo) loads from it instead of its hub id.
PARTYHUB_MODELS_DIR = Path(env_str("PARTYHUB_MODELS_DIR", str(VAR_DIR / "models")))
# The most images one forward pass renders: compatible queued renders (same model, mode, size,
# steps, sampler, guidance, strength) from any party are batched up to this many.
# 32 on a GPU, where a batch of 32 one-step 512×512 images keeps it busy (docs/performance.md).
PARTYHUB_MAX_BATCH = env_int(
    "PARTYHUB_MAX_BATCH", 32 if PARTYHUB_DEVICE == "cuda" else 8, minimum=1
)
# The weights a worker keeps loaded, in MB; loading past it unloads the least recently used
# models. 0: 70% of the GPU's memory on CUDA, no limit elsewhere.
PARTYHUB_MODEL_MEMORY_MB = env_int("PARTYHUB_MODEL_MEMORY_MB", 0, minimum=0)
# torch.compile the UNet on CUDA: slower first renders, faster after. Batches are then padded
# to a power of two, so that it compiles once per batch size (generation/fast_path.py).
PARTYHUB_COMPILE = env_bool("PARTYHUB_COMPILE", False)
# What decodes the final images: "full", the model's own VAE (best quality), or "tiny", its TAESD
# (the previews' decoder, under PARTYHUB_MODELS_DIR: several times faster on a GPU, slightly
# softer; for streams and speed). A model without a TAESD decodes with its VAE.
PARTYHUB_FINAL_DECODER = env_choice("PARTYHUB_FINAL_DECODER", ["full", "tiny"], "full")
# Live previews of running renders (TAESD), broadcast to the room with render.progress.
PARTYHUB_PREVIEWS = env_bool("PARTYHUB_PREVIEWS", True)
# The zero-cost model that only measures PartyHub's own overhead (bench/latency.py).
PARTYHUB_OVERHEAD_PROBE = env_bool("PARTYHUB_OVERHEAD_PROBE", False)
# CLIP scores (generation/scoring.py, open_clip) from weights on disk, never downloaded:
# PARTYHUB_CLIP_PRETRAINED names a checkpoint file or a pretrained tag already in the local
# Hugging Face cache; "off" (or empty) turns scoring off. Unset, the bundled offline model draws
# with the bundled offline CLIP (offline/weights/clip), which knows its world of shapes and
# nothing else, and any other default model goes without scores. PARTYHUB_CLIP_CONFIG registers
# a model config JSON that is not built into open_clip; PARTYHUB_CLIP_MODEL must then be that
# file's name.
OFFLINE_CLIP = BASE_DIR / "offline" / "weights" / "clip" / "partyhub-offline-clip"
_bundled_clip = "PARTYHUB_CLIP_PRETRAINED" not in os.environ and PARTYHUB_DEFAULT_MODEL == "offline"
PARTYHUB_CLIP_PRETRAINED = env_str(
    "PARTYHUB_CLIP_PRETRAINED", f"{OFFLINE_CLIP}.safetensors" if _bundled_clip else ""
)
if PARTYHUB_CLIP_PRETRAINED == "off":
    PARTYHUB_CLIP_PRETRAINED = ""
PARTYHUB_CLIP_MODEL = env_str(
    "PARTYHUB_CLIP_MODEL", OFFLINE_CLIP.name if _bundled_clip else "ViT-B-32"
)
PARTYHUB_CLIP_CONFIG = env_str(
    "PARTYHUB_CLIP_CONFIG", f"{OFFLINE_CLIP}.json" if _bundled_clip else ""
)
# The CLIP similarity from which search by meaning counts an image a match; unset, the one
# measured for PARTYHUB_CLIP_MODEL (partyhub/search.py, MIN_SIMILARITY), or none.
PARTYHUB_SEARCH_MIN_SIMILARITY = env_float("PARTYHUB_SEARCH_MIN_SIMILARITY", None, -1.0, 1.0)

# "embedded": a worker inside the server process; "celery": Celery workers through REDIS_URL.
PARTYHUB_RENDER_WORKER = env_choice(
    "PARTYHUB_RENDER_WORKER", ["embedded", "celery"], "celery" if REDIS_URL else "embedded"
)
if PARTYHUB_RENDER_WORKER == "celery" and not REDIS_URL:
    raise ImproperlyConfigured("PARTYHUB_RENDER_WORKER=celery needs REDIS_URL for the broker.")

# --- Celery (DESIGN.md "Jobs") ---------------------------------------------------------------

RENDER_SOFT_TIME_LIMIT = env_int("PARTYHUB_RENDER_SOFT_TIME_LIMIT", 120, minimum=1)
RENDER_HARD_TIME_LIMIT = env_int("PARTYHUB_RENDER_HARD_TIME_LIMIT", 150, minimum=2)
RENDER_MAX_ATTEMPTS = 3  # a render that kills its worker this many times ends failed
# A worker holds a render on a lease it renews while the render makes progress. A stalled worker
# (stopped, swapped out, cut off from the database) stops renewing, and once the lease lapses the
# render is handed to another worker; the stalled one's late result is refused. The lease lasts
# the base (loading a model) plus this many milliseconds per step of one 512×512 image, scaled
# by the batch's steps, images and pixels (Render.lease_seconds).
RENDER_LEASE_BASE_SECONDS = env_int("PARTYHUB_RENDER_LEASE_BASE_SECONDS", 60, minimum=1)
RENDER_LEASE_MS_PER_STEP = env_int("PARTYHUB_RENDER_LEASE_MS_PER_STEP", 500, minimum=1)
if RENDER_HARD_TIME_LIMIT <= RENDER_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("PARTYHUB_RENDER_HARD_TIME_LIMIT must exceed the soft limit.")

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ACKS_LATE = True  # a render is acknowledged only when it has finished
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # a killed worker's render is delivered again
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a GPU worker holds one job; the rest wait for idle peers
CELERY_TASK_SOFT_TIME_LIMIT = RENDER_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = RENDER_HARD_TIME_LIMIT
# Redis redelivers unacknowledged tasks after the visibility timeout: it must exceed the hard
# limit, or a render still running would be handed to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": RENDER_HARD_TIME_LIMIT * 4}
CELERY_TASK_DEFAULT_QUEUE = "renders"
# `celery -A partyhub beat` runs the streams' autopilot; it only queues renders, so any worker
# that serves the "streams" queue renders them.
CELERY_BEAT_SCHEDULE = {
    "streams-autopilot": {
        "task": "streams.autopilot",
        "schedule": 5.0,
        "options": {"queue": "streams"},
    },
    # Hands renders whose worker stalled past its lease to another worker.
    "requeue-lapsed-renders": {"task": "generation.requeue_lapsed", "schedule": 5.0},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # PartyHub's own modules and Daphne's say what they do at INFO. Other libraries say only
    # warnings unless LOG_LEVEL asks for more: open_clip logs each step of a load at INFO
    # through the root logger itself, a dozen lines in every `make run`.
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
    "loggers": {
        name: {"level": env_str("LOG_LEVEL", "INFO")}
        for name in ("partyhub", "generation", "streams", "core", "config", "offline", "accounts")
        + ("daphne", "django", "celery")
    },
}

CSRF_FAILURE_VIEW = "core.api.csrf_failure"  # JSON errors for API clients, not an HTML page
