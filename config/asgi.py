import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()  # sets Django up before the imports below touch models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from core import daphne_requests  # noqa: E402
from core.backpressure import BackpressureMiddleware  # noqa: E402


class StartEmbeddedWorker:
    """Starts the in-process render worker on the server's event loop with the first request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if settings.PARTYHUB_RENDER_WORKER == "embedded":
            from partyhub.jobs import embedded
            from streams import autopilot

            embedded.ensure_running()
            autopilot.ensure_running()
        return await self.app(scope, receive, send)


daphne_requests.install()

application = StartEmbeddedWorker(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": BackpressureMiddleware(
                AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns))
            ),
        }
    )
)
