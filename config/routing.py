from channels.auth import AuthMiddlewareStack
from django.urls import path

from partyhub.consumers import PartyConsumer
from streams.consumers import StreamConsumer

websocket_urlpatterns = [
    path("ws/parties/<str:code>/", AuthMiddlewareStack(PartyConsumer.as_asgi())),
    # Stream viewers are anonymous: no session and user lookups (a database query on each
    # connection, and a wrapper around every frame sent) that party members need.
    path("ws/streams/<slug:slug>/", StreamConsumer.as_asgi()),
]
