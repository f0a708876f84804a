from django.urls import path

from partyhub.consumers import PartyConsumer
from streams.consumers import StreamConsumer

websocket_urlpatterns = [
    path("ws/parties/<str:code>/", PartyConsumer.as_asgi()),
    path("ws/streams/<slug:slug>/", StreamConsumer.as_asgi()),
]
